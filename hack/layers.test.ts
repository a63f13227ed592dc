import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { importCycles, importGraph, layerViolations, type Edge } from './layers.ts';

const e = (from: string, to: string): Edge => ({ from, to });

describe('the layering of src/', () => {
  test('every import in src/ goes to its own folder or a lower layer, and no module cycle exists', () => {
    const edges = importGraph(path.resolve(import.meta.dirname, '../src'));
    expect(edges.length).toBeGreaterThan(300);
    // The graph sees what the controllers import (so an empty graph cannot pass this by accident).
    expect(edges).toContainEqual(e('registry/reconciler.ts', 'model/hosts.ts'));
    expect(edges).toContainEqual(e('main.ts', 'run-operator.ts')); // a dynamic import
    expect(layerViolations(edges)).toEqual([]);
    expect(importCycles(edges)).toEqual([]);
  });
});

describe('layerViolations', () => {
  test.each([
    ['a controller importing another', e('retention/controller.ts', 'gc/controller.ts'), /same layer/],
    ['the domain importing a controller', e('model/hosts.ts', 'registry/reconciler.ts'), /higher layer/],
    ['the runtime importing the configuration', e('runtime/run.ts', 'config/config.ts'), /higher layer/],
    ['util importing the runtime', e('util/flags.ts', 'runtime/logger.ts'), /higher layer/],
    ['a folder in no layer', e('newthing/x.ts', 'util/flags.ts'), /in no layer/],
    ['a controller importing the top', e('gc/controller.ts', 'controllers.ts'), /higher layer/],
  ])('refuses %s', (_what, edge, message) => {
    expect(layerViolations([edge])).toEqual([expect.stringMatching(message)]);
  });

  test.each([
    ['within a folder', e('gc/controller.ts', 'gc/procedure.ts')],
    ['a controller importing the domain', e('gc/controller.ts', 'model/hosts.ts')],
    ['a controller importing the Job machinery', e('retention/controller.ts', 'jobs/lock.ts')],
    ['the top importing a controller', e('controllers.ts', 'gc/controller.ts')],
    ['the domain importing the runtime', e('model/registry-keys.ts', 'runtime/kube/client.ts')],
  ])('allows %s', (_what, edge) => {
    expect(layerViolations([edge])).toEqual([]);
  });
});

describe('importCycles', () => {
  test('finds each cycle once, with every module in it', () => {
    expect(
      importCycles([
        e('a/1.ts', 'a/2.ts'),
        e('a/2.ts', 'a/3.ts'),
        e('a/3.ts', 'a/1.ts'),
        e('a/3.ts', 'b/4.ts'),
        e('b/4.ts', 'b/5.ts'),
        e('b/5.ts', 'b/4.ts'),
        e('c/6.ts', 'c/6.ts'),
      ]),
    ).toEqual([['a/1.ts', 'a/2.ts', 'a/3.ts'], ['b/4.ts', 'b/5.ts'], ['c/6.ts']]);
  });
  test('a graph without cycles has none', () => {
    expect(importCycles([e('a/1.ts', 'a/2.ts'), e('a/1.ts', 'a/3.ts'), e('a/2.ts', 'a/3.ts')])).toEqual([]);
  });
});
