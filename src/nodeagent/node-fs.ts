// The node agent's effects on the node's files: read what is there, apply a plan. Every write is
// atomic (a temporary file in the same folder, then a rename) and happens only when the content
// changes (the plan says so). The hosts file is the exception when it is a bind-mounted single
// file (as a DaemonSet's hostPath File mount is): a rename onto a mount point is impossible, so
// its new content is written in place with one write and a truncate.
import { randomBytes } from 'node:crypto';
import { promises as fs, type Dirent } from 'node:fs';
import path from 'node:path';
import { isHostName } from '../model/node-access-config.ts';
import {
  caFile,
  hostsTomlFile,
  markerFile,
  parseMarker,
  type Action,
  type FolderState,
  type NodeState,
  type Plan,
} from './plan.ts';

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

async function readIfFile(file: string): Promise<string | undefined> {
  try {
    const st = await fs.lstat(file);
    if (!st.isFile()) return undefined;
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if (code(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** Reads the certs.d folders (only host-named folders matter) and the hosts file. */
export async function readNodeState(certsDir: string, hostsFile: string | undefined): Promise<NodeState> {
  const folders: Record<string, FolderState> = {};
  let entries: Dirent[] = [];
  try {
    entries = await fs.readdir(certsDir, { withFileTypes: true });
  } catch (err) {
    if (code(err) !== 'ENOENT') throw err;
  }
  for (const entry of entries) {
    if (!entry.isDirectory() || !isHostName(entry.name)) continue;
    const dir = path.join(certsDir, entry.name);
    const markerText = await readIfFile(path.join(dir, markerFile));
    const marker = parseMarker(markerText);
    const files: Record<string, string> = {};
    for (const name of new Set([markerFile, caFile, hostsTomlFile, ...(marker?.files ?? [])])) {
      const text = await readIfFile(path.join(dir, name));
      if (text !== undefined) files[name] = text;
    }
    folders[entry.name] = { marker, files };
  }
  const state: NodeState = { folders };
  if (hostsFile) state.hostsFile = (await readIfFile(hostsFile)) ?? '';
  return state;
}

/** Writes `content` to `file` atomically: a temporary file beside it, fsync, rename. */
export async function writeAtomic(file: string, content: string, mode = 0o644): Promise<void> {
  const tmp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.berth-${randomBytes(6).toString('hex')}`,
  );
  const handle = await fs.open(tmp, 'wx', mode);
  try {
    await handle.writeFile(content);
    await handle.chmod(mode);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** The hosts file: atomic when possible, else (a bind-mounted file) one in-place write. */
export async function writeHostsFile(file: string, content: string): Promise<'atomic' | 'in-place'> {
  let mode = 0o644;
  try {
    mode = (await fs.stat(file)).mode & 0o7777;
  } catch (err) {
    if (code(err) !== 'ENOENT') throw err;
  }
  try {
    await writeAtomic(file, content, mode);
    return 'atomic';
  } catch (err) {
    if (!['EBUSY', 'EXDEV', 'EROFS', 'EACCES', 'EPERM'].includes(code(err) ?? '')) throw err;
  }
  const handle = await fs.open(file, 'r+');
  try {
    const buf = Buffer.from(content);
    await handle.write(buf, 0, buf.length, 0);
    await handle.truncate(buf.length);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return 'in-place';
}

export interface ApplyOutcome {
  written: number;
  removed: number;
  hostsWrite?: 'atomic' | 'in-place';
}

/** Applies a plan's actions in order. */
export async function applyPlan(
  certsDir: string,
  hostsFile: string | undefined,
  plan: Plan,
): Promise<ApplyOutcome> {
  const outcome: ApplyOutcome = { written: 0, removed: 0 };
  for (const action of plan.actions) await applyAction(certsDir, hostsFile, action, outcome);
  return outcome;
}

async function applyAction(
  certsDir: string,
  hostsFile: string | undefined,
  action: Action,
  outcome: ApplyOutcome,
): Promise<void> {
  switch (action.kind) {
    case 'mkdir':
      await fs.mkdir(path.join(certsDir, action.folder), { recursive: true, mode: 0o755 });
      return;
    case 'write':
      await writeAtomic(path.join(certsDir, action.folder, action.file), action.content);
      outcome.written++;
      return;
    case 'remove':
      await fs.rm(path.join(certsDir, action.folder, action.file), { force: true });
      outcome.removed++;
      return;
    case 'rmdir':
      try {
        await fs.rmdir(path.join(certsDir, action.folder));
      } catch (err) {
        // Someone put their own files there: the folder stays, with them.
        if (!['ENOTEMPTY', 'EEXIST', 'ENOENT'].includes(code(err) ?? '')) throw err;
      }
      return;
    case 'hosts':
      if (!hostsFile) return;
      outcome.hostsWrite = await writeHostsFile(hostsFile, action.content);
      outcome.written++;
      return;
  }
}
