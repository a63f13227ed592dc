// When the credential store's files can be taken as unchanged without reading them.
//
// A poll (every few seconds) used to read and hash every file of the store, 16 of a sharded one,
// to find that nothing changed. The head of a sharded store does not name its shards' hashes (a
// change of one namespace's credentials rewrites one shard alone), so the head's content cannot
// stand for the others. What can: each file's stamp (device, inode, size, modification and change
// times, after symlinks). Any write to a file changes its change time (ctime) and a kubelet's
// update of a mounted Secret makes new files (new inodes), so a stamp that is the same as at the
// last read means the same content, with one exception: a file's times are as coarse as the
// file system's clock, so a second write in the same tick as the one just read leaves the same
// stamp. As git does with its "racily clean" entries, a stamp is trusted only when the file had
// last changed well before it was read (`racyMarginMs`); a file changed closer to its read is
// read again at the next poll (and from then on trusted).
import { readFile, stat } from 'node:fs/promises';

/** What identifies one version of a file, and when it last changed (ms since the epoch). */
export interface FileStamp {
  key: string;
  changedAtMs: number;
}

/** The files of one read of the store, each with its stamp taken before it was read. */
export interface StampRecord {
  /** Wall-clock time (ms) before the first stamp was taken. */
  readAtMs: number;
  /** File → stamp; undefined when the file could not be stat'ed (missing). */
  stamps: Map<string, FileStamp | undefined>;
}

/** How long before its read a file must have last changed for its stamp to be trusted. */
export const racyMarginMs = 3_000;

/** The file system as the store file uses it (injected in tests, e.g. to count the reads). */
export interface StoreFileSystem {
  readFile(file: string): Promise<string>;
  /** The file's stamp (after symlinks), or undefined when it cannot be stat'ed. */
  stamp(file: string): Promise<FileStamp | undefined>;
  /** Wall-clock milliseconds since the epoch: the clock of the file system's times. */
  now(): number;
}

export const nodeStoreFileSystem: StoreFileSystem = {
  readFile: (file) => readFile(file, 'utf8'),
  stamp: async (file) => {
    try {
      const s = await stat(file, { bigint: true });
      const changed = s.ctimeNs > s.mtimeNs ? s.ctimeNs : s.mtimeNs;
      return {
        key: `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`,
        changedAtMs: Number(changed / 1_000_000n),
      };
    } catch {
      return undefined;
    }
  },
  now: () => Date.now(),
};

/**
 * Whether the files of `record` are, by their stamps `now` (the same files), unchanged since
 * that read: every stamp the same, and each file last changed at least `racyMarginMs` before
 * the read. No record (nothing read yet, or the last read failed): not known, so false.
 */
export function unchangedSince(
  record: StampRecord | undefined,
  now: ReadonlyMap<string, FileStamp | undefined>,
): boolean {
  if (!record || record.stamps.size !== now.size) return false;
  for (const [file, before] of record.stamps) {
    if (!now.has(file)) return false;
    const after = now.get(file);
    if (before === undefined || after === undefined) {
      if (before !== after) return false;
      continue;
    }
    if (before.key !== after.key) return false;
    if (before.changedAtMs > record.readAtMs - racyMarginMs) return false;
  }
  return true;
}

/** The stamps of the files of `record`, now. */
export async function stampsNow(
  record: StampRecord,
  files: StoreFileSystem,
): Promise<Map<string, FileStamp | undefined>> {
  const names = [...record.stamps.keys()];
  const stamps = await Promise.all(names.map((f) => files.stamp(f)));
  return new Map(names.map((f, i) => [f, stamps[i]]));
}
