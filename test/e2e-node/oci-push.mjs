// A minimal OCI distribution client (not crane) that the service-account-push suite runs in a Pod
// with `node`: it pushes one tiny image (an empty layer, its config, an OCI manifest) to
// $REGISTRY/$REPOSITORY:$TAG, logging in as the username "serviceaccount" with the token in
// $TOKEN_FILE. The registry's CA comes from NODE_EXTRA_CA_CERTS. Token flow: GET /v2/ answers 401
// with a Bearer challenge; the realm gives a registry token for pull,push on the repository.
// Prints the manifest's digest and exits 0, or prints the refused step and status and exits 1.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const { REGISTRY, REPOSITORY, TAG, TOKEN_FILE } = process.env;
const base = `https://${REGISTRY}`;
const digest = (bytes) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

async function expectStatus(step, response, ok) {
  if (ok.includes(response.status)) return response;
  const body = (await response.text()).slice(0, 500);
  console.error(`push refused at ${step}: HTTP ${response.status} ${body}`);
  process.exit(1);
}

async function login() {
  const challenge = (await fetch(`${base}/v2/`)).headers.get('www-authenticate') ?? '';
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  if (!challenge.startsWith('Bearer ') || !params.realm) throw new Error(`no Bearer challenge: ${challenge}`);
  const url = new URL(params.realm);
  if (params.service) url.searchParams.set('service', params.service);
  url.searchParams.set('scope', `repository:${REPOSITORY}:pull,push`);
  const password = readFileSync(TOKEN_FILE, 'utf8').trim();
  const basic = Buffer.from(`serviceaccount:${password}`).toString('base64');
  const answer = await expectStatus(
    'token',
    await fetch(url, { headers: { authorization: `Basic ${basic}` } }),
    [200],
  );
  const body = await answer.json();
  return `Bearer ${body.token ?? body.access_token}`;
}

async function pushBlob(auth, bytes) {
  const d = digest(bytes);
  const start = await fetch(`${base}/v2/${REPOSITORY}/blobs/uploads/`, {
    method: 'POST',
    headers: { authorization: auth },
  });
  await expectStatus('blob upload start', start, [202]);
  const location = new URL(start.headers.get('location') ?? '', base);
  location.searchParams.set('digest', d);
  const put = await fetch(location, {
    method: 'PUT',
    headers: { authorization: auth, 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  await expectStatus('blob upload', put, [201]);
  return { digest: d, size: bytes.length };
}

const tar = Buffer.alloc(1024); // an empty tar archive: two zero blocks
const layer = gzipSync(tar);
const config = Buffer.from(
  JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: [digest(tar)] },
  }),
);
const auth = await login();
const layerRef = await pushBlob(auth, layer);
const configRef = await pushBlob(auth, config);
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configRef },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layerRef }],
  }),
);
const put = await fetch(`${base}/v2/${REPOSITORY}/manifests/${TAG}`, {
  method: 'PUT',
  headers: { authorization: auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  body: manifest,
});
await expectStatus('manifest', put, [201]);
console.log(`pushed ${REGISTRY}/${REPOSITORY}:${TAG} ${digest(manifest)}`);
