// Every field of every berth kind has a description in the OpenAPI the API server publishes, so
// `kubectl explain` is useful; and kubectl explain shows it.
import { describe, expect, test } from '@jest/globals';
import { GROUP, VERSION, kinds } from '../../src/api/index.ts';
import { kubectl } from './helpers.ts';

interface OpenAPISchema {
  description?: string;
  type?: string;
  properties?: Record<string, OpenAPISchema>;
  items?: OpenAPISchema;
  additionalProperties?: OpenAPISchema | boolean;
  allOf?: OpenAPISchema[];
  $ref?: string;
}

/** Walks every field below `schema`; returns the paths walked and those without a description. */
function fieldsOf(schema: OpenAPISchema, prefix: string): { all: string[]; undocumented: string[] } {
  const all: string[] = [];
  const undocumented: string[] = [];
  const visit = (s: OpenAPISchema, path: string) => {
    for (const [name, child] of Object.entries(s.properties ?? {})) {
      const p = `${path}.${name}`;
      all.push(p);
      if (!child.description?.trim()) undocumented.push(p);
      // Fields typed by a Kubernetes type ($ref, e.g. metadata: ObjectMeta) are documented upstream.
      if (child.$ref || child.allOf) continue;
      visit(child, p);
      if (child.items) visit(child.items, `${p}[]`);
      if (typeof child.additionalProperties === 'object') visit(child.additionalProperties, `${p}{}`);
    }
  };
  visit(schema, prefix);
  return { all, undocumented };
}

describe('the published OpenAPI of berth.dev/v1alpha1', () => {
  test.each(kinds.map((k) => k.kind))('documents every field of %s', async (kind) => {
    const doc = JSON.parse(await kubectl(['get', '--raw', `/openapi/v3/apis/${GROUP}/${VERSION}`])) as {
      components: { schemas: Record<string, OpenAPISchema> };
    };
    const schema = doc.components.schemas[`dev.berth.${VERSION}.${kind}`];
    expect(schema?.description).toBeTruthy();
    const { all, undocumented } = fieldsOf(schema!, kind.toLowerCase());
    expect(undocumented).toEqual([]);
    // The walk really went through the schema: spec, status and their nested fields.
    expect(all.length).toBeGreaterThan(kind === 'Registry' ? 80 : 30);
    expect(all).toContain(`${kind.toLowerCase()}.status.conditions[].lastTransitionTime`);
  });

  test('kubectl explain registry.spec.pullSecrets.rotation describes the field and its children', async () => {
    const out = await kubectl(['explain', 'registry.spec.pullSecrets.rotation']);
    expect(out).toMatch(/GROUP:\s+berth\.dev/);
    expect(out).toMatch(/KIND:\s+Registry/);
    expect(out).toContain("How often each namespace's credential is replaced.");
    expect(out).toMatch(/gracePeriod\s+<string>/);
    expect(out).toMatch(/How long the previous credential stays valid after a rotation/);
    expect(out).toMatch(/interval\s+<string>/);
    expect(out).toMatch(/Time between rotations, as a Go duration \(default 24h/);
  });

  test('kubectl explain reaches the deepest fields of each kind', async () => {
    const rp = await kubectl(['explain', 'retentionpolicy.spec.protect.maxDeletions.percent']);
    expect(rp).toMatch(/as a percentage \(0 to 100\)/);
    const repo = await kubectl(['explain', 'repo.spec.path']);
    expect(repo).toMatch(/It must start\s+with "<this namespace>\/"/);
  });
});
