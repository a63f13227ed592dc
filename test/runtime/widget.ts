// A test-only custom resource (Widget, group runtime-test.berth.dev) and a small controller on
// the runtime, used by the runtime's integration suites in-process and by fixtures/operator.ts.
// A Widget's spec.message is copied into an owned ConfigMap `<name>-out` (server-side apply) and
// into status.message with a Ready condition (status subresource, only when it changed).
import { appendFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { installCRDs } from '../harness/crds.ts';
import { readConditions, setCondition } from '../../src/runtime/conditions.ts';
import type { ControllerDefinition } from '../../src/runtime/controller.ts';
import type { Deps } from '../../src/runtime/deps.ts';
import { TerminalError } from '../../src/runtime/errors.ts';
import type { KubeObject } from '../../src/runtime/kube/client.ts';
import { core, objectPath, type ResourceType } from '../../src/runtime/kube/resource.ts';
import type { Manager } from '../../src/runtime/manager.ts';
import { managedByBerth, managedBySelector, mapToOwner, ownerReference } from '../../src/runtime/objects.ts';
import { jsonEqual } from '../../src/runtime/objects.ts';
import { applyOwned } from '../../src/runtime/writes.ts';

export const widgetGroup = 'runtime-test.berth.dev';
export const widgets: ResourceType = { group: widgetGroup, version: 'v1', plural: 'widgets', kind: 'Widget' };

export interface Widget extends KubeObject {
  spec?: { message?: unknown };
  status?: unknown;
}

export function widgetCRD(plural = 'widgets', kind = 'Widget'): k8s.V1CustomResourceDefinition {
  const open = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  return k8s.loadYaml<k8s.V1CustomResourceDefinition>(
    JSON.stringify({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `${plural}.${widgetGroup}` },
      spec: {
        group: widgetGroup,
        scope: 'Namespaced',
        names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            subresources: { status: {} },
            schema: { openAPIV3Schema: { type: 'object', properties: { spec: open, status: open } } },
          },
        ],
      },
    }),
  );
}

export async function installWidgetCRD(
  kubeconfig: string,
  plural = 'widgets',
  kind = 'Widget',
): Promise<void> {
  await installCRDs(kubeconfig, [widgetCRD(plural, kind)]);
}

export interface WidgetOptions {
  /** Appends one JSON line per reconcile {key, pid, start, end} (ms) to this file. */
  traceFile?: string;
  /** Holds each reconcile open this long (widens the window in which overlaps would show). */
  delayMs?: number;
  /** Called between reading the Widget and writing its status (the conflict test's writer). */
  beforeStatusWrite?: (widget: Widget) => Promise<void>;
}

export function widgetController(deps: Deps, manager: Manager, options: WidgetOptions = {}): void {
  const cache = manager.informer<Widget>(widgets);
  const outputs = manager.informer(core.configMaps, { labelSelector: managedBySelector });
  const definition: ControllerDefinition<Widget> = {
    name: 'widget',
    for: cache,
    watches: [{ informer: outputs, map: mapToOwner(widgetGroup, 'Widget') }],
    async reconcile({ key, namespace, name }) {
      const start = Date.now();
      try {
        const widget = cache.get(name, namespace);
        if (!widget) return {};
        if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
        const generation = widget.metadata?.generation;
        const message = widget.spec?.message;
        const conditions = readConditions(widget.status);
        if (typeof message !== 'string') {
          const status = {
            observedGeneration: generation,
            conditions: setCondition(
              conditions,
              {
                type: 'Ready',
                status: 'False',
                reason: 'InvalidSpec',
                message: 'spec.message must be a string',
              },
              generation,
              deps.clock.now(),
            ),
          };
          await replaceStatus(deps, widget, status);
          throw new TerminalError('InvalidSpec', 'spec.message must be a string');
        }
        const current = outputs.get(`${name}-out`, namespace);
        await applyOwned(
          deps.client,
          core.configMaps,
          {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: {
              name: `${name}-out`,
              namespace,
              labels: { ...managedByBerth },
              ownerReferences: [ownerReference(widget)],
            },
            data: { message },
          },
          current,
        );
        await options.beforeStatusWrite?.(widget);
        const status = {
          observedGeneration: generation,
          message,
          conditions: setCondition(
            conditions,
            { type: 'Ready', status: 'True', reason: 'Copied', message: 'the message is in the ConfigMap' },
            generation,
            deps.clock.now(),
          ),
        };
        await replaceStatus(deps, widget, status);
        return {};
      } finally {
        if (options.traceFile)
          appendFileSync(
            options.traceFile,
            JSON.stringify({ key, pid: process.pid, start, end: Date.now() }) + '\n',
          );
      }
    },
  };
  manager.add(definition);
}

/**
 * The Widget's status by replace with the cached resourceVersion, when it changed: a concurrent
 * writer makes it fail with 409, which the runtime's conflict test needs (berth's controllers
 * write status by server-side apply instead, which does not conflict).
 */
async function replaceStatus(deps: Deps, widget: Widget, status: unknown): Promise<void> {
  if (jsonEqual(widget.status, status)) return;
  const path = objectPath(widgets, widget.metadata?.name ?? '', widget.metadata?.namespace, 'status');
  await deps.client.replace(path, {
    ...widget,
    metadata: { ...widget.metadata, managedFields: undefined },
    status,
  });
}
