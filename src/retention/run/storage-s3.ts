// Push times from a registry on S3 (or an S3-compatible store): the same links as the filesystem
// backend (storage.ts), under `<rootdirectory>/docker/registry/v2/` in the bucket, with the object's
// LastModified (one-second resolution) as the time:
// - a tag: `repositories/<repo>/_manifests/tags/<tag>/current/link` (rewritten on every push of the
//   tag; its content is the digest the registry resolves the tag to);
// - every stored manifest: `repositories/<repo>/_manifests/revisions/sha256/<hex>/link`.
// Requests: one ListObjectsV2 listing (1,000 keys a page) of a repository's tags folder gives every
// tag's current/link LastModified and the tag's index (`tags/<tag>/index/sha256/<hex>/link`, one
// entry per digest the tag has pointed to). The registry writes the index entry before current/link
// on every push, so a tag whose index holds exactly one digest points to that digest; only for a tag
// that has pointed to several digests is current/link read (GetObject: content and LastModified).
// One more listing of the revisions folder gives every manifest. Credentials come from the AWS SDK's
// default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or a web identity / instance role).
import {
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  S3Client,
  S3ServiceException,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import {
  checkTagName,
  repositoryComponents,
  StorageError,
  type PushTimeSource,
  type RevisionLink,
  type TagLink,
} from './storage.ts';

export interface S3StorageOptions {
  bucket: string;
  region: string;
  /** An S3-compatible endpoint (http(s) URL); default: AWS for the region. */
  endpoint?: string;
  /** Path-style addressing (`<endpoint>/<bucket>/<key>`), as most S3-compatible stores need. */
  forcePathStyle?: boolean;
  /** The registry's `storage.s3.rootdirectory`, if any. */
  rootDirectory?: string;
}

/** The key prefix of the registry's data: `<root>/docker/registry/v2/`, as Distribution's s3 driver forms keys. */
export function s3BasePrefix(rootDirectory: string | undefined): string {
  const root = (rootDirectory ?? '').replace(/^\/+|\/+$/g, '');
  return `${root ? `${root}/` : ''}docker/registry/v2/`;
}

interface TagListing {
  /** LastModified of current/link (absent: the tag has no current link). */
  current?: number;
  /** Digests in the tag's index. */
  index: string[];
}

export class S3PushTimes implements PushTimeSource {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly base: string;
  /** One listing per repository and run (the snapshot asks for each of its tags). */
  private readonly tagListings = new Map<string, Promise<Map<string, TagListing>>>();
  /** Requests made, by kind (for tests and figures). */
  readonly requests = { list: 0, get: 0 };

  constructor(options: S3StorageOptions, client?: S3Client) {
    this.bucket = options.bucket;
    this.base = s3BasePrefix(options.rootDirectory);
    this.client =
      client ??
      new S3Client({
        region: options.region,
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        forcePathStyle: options.forcePathStyle ?? false,
        // Checksums only where S3 requires them: S3-compatible stores differ in what they accept.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        maxAttempts: 5,
      });
  }

  close(): void {
    this.client.destroy();
  }

  private describe(err: unknown, what: string): StorageError {
    // The SDK's errors name the operation and the service's code, never the credentials.
    const e = err as Error;
    const code =
      err instanceof S3ServiceException ? `${err.name} (HTTP ${err.$metadata.httpStatusCode})` : e.name;
    return new StorageError(`S3 ${what} in bucket ${this.bucket}: ${code}: ${e.message}`);
  }

  private repoPrefix(repository: string): string {
    return `${this.base}repositories/${repositoryComponents(repository).join('/')}/_manifests/`;
  }

  /** Every key under `prefix` (relative to it) with its LastModified. */
  private async list(prefix: string): Promise<{ key: string; at: number }[]> {
    const out: { key: string; at: number }[] = [];
    try {
      for await (const page of paginateListObjectsV2(
        { client: this.client, pageSize: 1000 },
        { Bucket: this.bucket, Prefix: prefix },
      )) {
        this.requests.list++;
        for (const o of page.Contents ?? [])
          if (o.Key && o.LastModified)
            out.push({ key: o.Key.slice(prefix.length), at: o.LastModified.getTime() });
      }
    } catch (err) {
      throw this.describe(err, `listing ${prefix}`);
    }
    return out;
  }

  async check(): Promise<void> {
    let count: number;
    try {
      this.requests.list++;
      const res = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.base, MaxKeys: 1 }),
      );
      count = res.KeyCount ?? res.Contents?.length ?? 0;
    } catch (err) {
      throw this.describe(err, `listing ${this.base}`);
    }
    if (count === 0)
      throw new StorageError(
        `bucket ${this.bucket} holds nothing under ${this.base}: --s3-bucket/--s3-root-directory must name the registry's storage`,
      );
  }

  private tagsOf(repository: string): Promise<Map<string, TagListing>> {
    let listing = this.tagListings.get(repository);
    if (!listing) {
      listing = this.list(`${this.repoPrefix(repository)}tags/`).then((objects) => {
        const tags = new Map<string, TagListing>();
        const entry = (tag: string) => {
          let t = tags.get(tag);
          if (!t) tags.set(tag, (t = { index: [] }));
          return t;
        };
        for (const { key, at } of objects) {
          const parts = key.split('/');
          if (parts.length === 3 && parts[1] === 'current' && parts[2] === 'link')
            entry(parts[0] ?? '').current = at;
          else if (
            parts.length === 5 &&
            parts[1] === 'index' &&
            parts[2] === 'sha256' &&
            /^[a-f0-9]{64}$/.test(parts[3] ?? '') &&
            parts[4] === 'link'
          )
            entry(parts[0] ?? '').index.push(`sha256:${parts[3]}`);
        }
        return tags;
      });
      listing.catch(() => this.tagListings.delete(repository));
      this.tagListings.set(repository, listing);
    }
    return listing;
  }

  async tag(repository: string, tag: string): Promise<TagLink | undefined> {
    checkTagName(tag);
    const listed = (await this.tagsOf(repository)).get(tag);
    if (listed?.current === undefined) return undefined;
    const only = listed.index.length === 1 ? listed.index[0] : undefined;
    if (only) return { digest: only, pushedAt: listed.current };
    // The tag has pointed to several digests: its current link says which one it is now.
    const key = `${this.repoPrefix(repository)}tags/${tag}/current/link`;
    try {
      this.requests.get++;
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const digest = ((await res.Body?.transformToString('utf8')) ?? '').trim();
      if (!/^sha256:[a-f0-9]{64}$/.test(digest)) throw new StorageError(`${key} holds no digest`);
      return { digest, pushedAt: res.LastModified?.getTime() ?? listed.current };
    } catch (err) {
      if (err instanceof NoSuchKey) return undefined; // deleted since the listing
      if (err instanceof StorageError) throw err;
      throw this.describe(err, `reading ${key}`);
    }
  }

  async revisions(repository: string): Promise<RevisionLink[]> {
    const objects = await this.list(`${this.repoPrefix(repository)}revisions/sha256/`);
    const out: RevisionLink[] = [];
    for (const { key, at } of objects) {
      const [hex, link, ...rest] = key.split('/');
      if (hex && /^[a-f0-9]{64}$/.test(hex) && link === 'link' && rest.length === 0)
        out.push({ digest: `sha256:${hex}`, pushedAt: at });
    }
    return out;
  }
}
