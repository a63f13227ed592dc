// Installs berth's CRDs (crds/*.yaml) into a cluster and waits until they are established.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { waitFor } from './net.ts';
import { repoRoot } from './processes.ts';

export function loadCRDs(dir = path.join(repoRoot, 'crds')): k8s.V1CustomResourceDefinition[] {
  if (!existsSync(dir)) return [];
  return (
    readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .sort()
      // The typed client serializes only the fields it knows, under their TypeScript names
      // (`_default`, `x_kubernetes_validations`): loadAllYaml deserializes into those models.
      .flatMap((f) => k8s.loadAllYaml(readFileSync(path.join(dir, f), 'utf8')) as { kind?: string }[])
      .filter((o): o is k8s.V1CustomResourceDefinition => o?.kind === 'CustomResourceDefinition')
  );
}

export async function installCRDs(kubeconfig: string, crds = loadCRDs()): Promise<void> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const api = kc.makeApiClient(k8s.ApiextensionsV1Api);
  for (const crd of crds) {
    const name = crd.metadata?.name ?? '';
    // Suites side by side may install the same CRD at once: a 409 (created or changed meanwhile)
    // means read it again and retry.
    for (let attempt = 1; ; attempt++) {
      try {
        try {
          const existing = await api.readCustomResourceDefinition({ name });
          crd.metadata = { ...crd.metadata, resourceVersion: existing.metadata?.resourceVersion };
          await api.replaceCustomResourceDefinition({ name, body: crd });
        } catch (err) {
          if (!(err instanceof k8s.ApiException) || err.code !== 404) throw err;
          crd.metadata = { ...crd.metadata, resourceVersion: undefined };
          await api.createCustomResourceDefinition({ body: crd });
        }
        break;
      } catch (err) {
        if (!(err instanceof k8s.ApiException) || err.code !== 409 || attempt >= 5) throw err;
      }
    }
  }
  for (const crd of crds) {
    const name = crd.metadata?.name ?? '';
    await waitFor(`CRD ${name} to be established`, async () => {
      const got = await api.readCustomResourceDefinition({ name });
      return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
    });
  }
}
