// Push times from the registry's own storage, never from the image's `created` field. In the
// filesystem backend (the folder that holds docker/registry/v2):
// - a tag's push time is the modification time of `_manifests/tags/<tag>/current/link` (rewritten
//   on every push of the tag), and that file holds the digest the registry resolves the tag to;
// - every manifest stored in a repository has `_manifests/revisions/sha256/<hex>/link`, whose
//   modification time is when it was first stored; this is also how untagged manifests are found
//   (the registry API cannot list them).
// The S3 backend (storage-s3.ts) reads the same keys, with the object's LastModified as the time.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

export interface TagLink {
  digest: string;
  pushedAt: number;
}

export interface RevisionLink {
  digest: string;
  pushedAt: number;
}

export interface PushTimeSource {
  /** Fails early with a clear message when the storage is not a registry's. */
  check(): Promise<void>;
  /** The tag's link, or undefined when the storage has none. */
  tag(repository: string, tag: string): Promise<TagLink | undefined>;
  /** Every manifest revision stored in the repository. */
  revisions(repository: string): Promise<RevisionLink[]>;
}

export class StorageError extends Error {
  override name = 'StorageError';
}

const notFound = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** A repository path's components; refuses names that would leave the repositories folder. */
export function repositoryComponents(repository: string): string[] {
  const parts = repository.split('/');
  if (parts.some((c) => c === '..' || c === '.' || c === ''))
    throw new StorageError(`invalid repository name "${repository}"`);
  return parts;
}

export function checkTagName(tag: string): void {
  if (tag.includes('/') || tag === '..' || tag === '.' || tag === '')
    throw new StorageError(`invalid tag "${tag}"`);
}

export class FilesystemPushTimes implements PushTimeSource {
  private readonly root: string;

  /** `root` is the storage root directory: the folder that contains `docker/registry/v2`. */
  constructor(root: string) {
    this.root = root;
  }

  private repoDir(repository: string): string {
    return path.join(
      this.root,
      'docker',
      'registry',
      'v2',
      'repositories',
      ...repositoryComponents(repository),
    );
  }

  /** Fails early with a clear message when the folder is not a registry storage root. */
  async check(): Promise<void> {
    try {
      await stat(path.join(this.root, 'docker', 'registry', 'v2'));
    } catch (err) {
      if (notFound(err))
        throw new StorageError(
          `${this.root} holds no docker/registry/v2: --storage-root must be the registry's storage root directory`,
        );
      throw err;
    }
  }

  async tag(repository: string, tag: string): Promise<TagLink | undefined> {
    checkTagName(tag);
    const file = path.join(this.repoDir(repository), '_manifests', 'tags', tag, 'current', 'link');
    try {
      const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
      return { digest: text.trim(), pushedAt: st.mtimeMs };
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
  }

  async revisions(repository: string): Promise<RevisionLink[]> {
    const dir = path.join(this.repoDir(repository), '_manifests', 'revisions', 'sha256');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (notFound(err)) return [];
      throw err;
    }
    const out: RevisionLink[] = [];
    for (const hex of names) {
      if (!/^[a-f0-9]{64}$/.test(hex)) continue;
      try {
        // A deleted manifest leaves its folder without a link.
        const st = await stat(path.join(dir, hex, 'link'));
        out.push({ digest: `sha256:${hex}`, pushedAt: st.mtimeMs });
      } catch (err) {
        if (!notFound(err)) throw err;
      }
    }
    return out;
  }
}
