// Watches a parent process; when it dies, kills the process groups and removes the folders
// listed in a state file. Plain JavaScript so it starts without a TypeScript loader.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, existsSync } from 'node:fs';

const [parentPid, stateFile] = process.argv.slice(2).map((a, i) => (i === 0 ? Number(a) : a));

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const timer = setInterval(() => {
  if (!existsSync(stateFile)) {
    clearInterval(timer); // torn down properly
    return;
  }
  if (alive(parentPid)) return;
  clearInterval(timer);
  let state = { pgids: [], dirs: [], cleanup: [] };
  try {
    state = JSON.parse(readFileSync(stateFile, 'utf8'));
  } catch {
    // unreadable: nothing to do but remove it
  }
  for (const pgid of state.pgids) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  setTimeout(() => {
    for (const [cmd, ...args] of state.cleanup ?? []) if (cmd) spawnSync(cmd, args, { stdio: 'ignore' });
    for (const dir of state.dirs) rmSync(dir, { recursive: true, force: true });
    rmSync(stateFile, { force: true });
  }, 500);
}, 500);
