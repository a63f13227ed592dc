// Verification after a garbage collection: every tag of every repository must still resolve, and
// every blob its manifests reference (config and layers, through multi-arch indexes) must exist.
// It speaks the OCI distribution API with Docker token authentication through berth's registry
// client (src/distribution/client.ts), which retries 429, 5xx and connection errors with backoff:
// the Job starts while the registry's Service may still point at a pod that has just gone (the
// writable configuration was rolled out a moment before), and a moment of that must not fail a
// collection, which would leave the registry read-only.
import {
  manifestAccept,
  RegistryClient,
  RegistryError,
  type RegistryAccess,
} from '../../distribution/client.ts';

/** The registry a Job checks, with its attempts per request (default 8: about a minute of backoff). */
export interface JobAccess extends RegistryAccess {
  attempts?: number;
}

/** The client the Jobs use: patient retries, the admin credential, the registry's CA. */
export function jobClient(access: JobAccess, repositoryActions: string): RegistryClient {
  return new RegistryClient({
    ...access,
    concurrency: 4,
    attempts: access.attempts ?? 8,
    backoffMs: 500, // doubled per attempt
    maxRetryWaitMs: 30_000,
    repositoryActions,
  });
}

export interface VerifyReport {
  repositories: number;
  tags: number;
  manifests: number;
  blobs: number;
  /** One line per problem: what is missing, where. Empty when everything resolves. */
  problems: string[];
}

interface Descriptor {
  digest?: string;
  mediaType?: string;
}
interface ManifestBody {
  mediaType?: string;
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
}

/** What a status that is neither found nor missing means for a check (after the retries). */
const unanswered = (err: unknown): string =>
  err instanceof RegistryError ? `HTTP ${err.status}` : (err as Error).message;

/** Walks every repository and tag; problems are collected, not thrown (an unreachable registry throws). */
export async function verifyRegistry(access: JobAccess): Promise<VerifyReport> {
  const client = jobClient(access, 'pull');
  try {
    return await walk(client);
  } finally {
    client.close();
  }
}

async function walk(client: RegistryClient): Promise<VerifyReport> {
  const report: VerifyReport = { repositories: 0, tags: 0, manifests: 0, blobs: 0, problems: [] };
  const repos = await client.catalog();
  for (const repo of repos) {
    report.repositories++;
    const scope = RegistryClient.repositoryScope(repo, 'pull');
    // A repository whose tags were all deleted has none to verify (the client reads 404 as none).
    const tags = await client.tags(repo);
    const seenManifests = new Set<string>();
    const seenBlobs = new Set<string>();
    const manifest = async (ref: string, where: string): Promise<void> => {
      if (seenManifests.has(ref)) return;
      seenManifests.add(ref);
      let res;
      try {
        res = await client.request('GET', `/v2/${repo}/manifests/${ref}`, scope, { accept: manifestAccept });
      } catch (err) {
        report.problems.push(`${where}: manifest ${ref} could not be checked (${unanswered(err)})`);
        return;
      }
      if (res.status !== 200) {
        report.problems.push(`${where}: manifest ${ref} does not resolve (${res.status})`);
        return;
      }
      report.manifests++;
      let body: ManifestBody;
      try {
        body = JSON.parse(res.body.toString('utf8')) as ManifestBody;
      } catch {
        report.problems.push(`${where}: manifest ${ref} is not JSON`);
        return;
      }
      for (const child of body.manifests ?? [])
        if (child.digest) await manifest(child.digest, `${where} → ${child.digest}`);
      for (const blob of [body.config, ...(body.layers ?? [])]) {
        if (!blob?.digest || seenBlobs.has(blob.digest)) continue;
        seenBlobs.add(blob.digest);
        let status: number;
        try {
          status = (await client.request('HEAD', `/v2/${repo}/blobs/${blob.digest}`, scope)).status;
        } catch (err) {
          report.problems.push(`${where}: blob ${blob.digest} could not be checked (${unanswered(err)})`);
          continue;
        }
        // A redirect is a blob served from elsewhere (S3 with redirects on): it exists.
        if (status === 200 || (status >= 300 && status < 400)) report.blobs++;
        else report.problems.push(`${where}: blob ${blob.digest} is missing (${status})`);
      }
    };
    for (const tag of tags) {
      report.tags++;
      await manifest(tag, `${repo}:${tag}`);
    }
  }
  return report;
}
