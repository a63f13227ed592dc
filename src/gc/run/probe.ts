// The read-only check before a garbage collection collects anything: a push must be refused.
// With the admin credential (allowed to push anywhere), it starts a blob upload, the first request
// of every push: POST /v2/<repository>/blobs/uploads/. Distribution (3.x) in read-only maintenance
// mode has no POST on that route and answers 405 "Method not allowed" (plain text, no errcode
// body; test/gc/probe.test.ts checks it against the real binary). A registry
// that accepts it (202 Accepted, with the upload's Location) is writable: the upload is cancelled
// at once (DELETE of its Location, so nothing is stored) and the collection must not run. Anything
// else (the credential refused) proves nothing, and does not count as refused. Connection errors,
// 429 and 5xx are retried with backoff by berth's registry client first (verify.ts, jobClient): the
// read-only pods have just replaced the writable ones, and the Service may point at a gone pod for
// a moment; only when the retries are spent does the check give up.
import { RegistryClient } from '../../distribution/client.ts';
import { jobClient, type JobAccess } from './verify.ts';

/** The repository the probe tries to push to; nothing is ever stored in it. */
export const probeRepository = 'berth-gc-probe/readonly';

export type ProbeResult =
  | { verdict: 'refused'; status: number }
  | { verdict: 'accepted'; status: number; cancelled: boolean; detail: string }
  | { verdict: 'inconclusive'; status: number; detail: string };

/** What the answer to the upload's POST says. Pure. */
export function uploadVerdict(
  status: number,
  location: string | undefined,
):
  | { verdict: 'refused' }
  | { verdict: 'accepted'; location?: string }
  | { verdict: 'inconclusive'; detail: string } {
  if (status === 405) return { verdict: 'refused' };
  if (status === 202 || status === 201) return { verdict: 'accepted', ...(location ? { location } : {}) };
  if (status === 401 || status === 403)
    return { verdict: 'inconclusive', detail: `the admin credential was refused (HTTP ${status})` };
  return { verdict: 'inconclusive', detail: `unexpected answer HTTP ${status}` };
}

/** Tries the push; cancels the upload if the registry accepted it. Throws when it cannot reach it. */
export async function probeReadOnly(
  access: JobAccess,
  repository: string = probeRepository,
): Promise<ProbeResult> {
  const client = jobClient(access, 'push,pull');
  try {
    return await probe(client, repository);
  } finally {
    client.close();
  }
}

async function probe(client: RegistryClient, repository: string): Promise<ProbeResult> {
  const scope = RegistryClient.repositoryScope(repository, 'push,pull');
  const path = `/v2/${repository}/blobs/uploads/`;
  const res = await client.request('POST', path, scope, { 'content-length': '0' });
  const location = res.headers.location;
  const v = uploadVerdict(res.status, typeof location === 'string' ? location : undefined);
  if (v.verdict === 'refused') return { verdict: 'refused', status: res.status };
  if (v.verdict === 'inconclusive')
    return { verdict: 'inconclusive', status: res.status, detail: `POST ${path}: ${v.detail}` };
  let cancelled = false;
  if (v.location) {
    // Cancelling an upload is a delete (Distribution asks for the `delete` action).
    const target = new URL(v.location, client.url).toString();
    const cancel = RegistryClient.repositoryScope(repository, 'push,pull,delete');
    const del = await client.request('DELETE', target, cancel, { 'content-length': '0' });
    cancelled = del.status === 204 || del.status === 202 || del.status === 200 || del.status === 404;
  }
  return {
    verdict: 'accepted',
    status: res.status,
    cancelled,
    detail:
      `the registry accepted a push (POST ${path} answered HTTP ${res.status}): it is not read-only, so ` +
      `nothing was collected; the throw-away upload was ${cancelled ? 'cancelled' : 'NOT cancelled (it expires with the upload purge)'}`,
  };
}
