// The script node:cluster starts for each token service worker: its setup arrives as JSON in
// BERTH_TOKEN_WORKER (paths and names only; secrets are read from the mounted files).
import cluster from 'node:cluster';
import { runTokenWorker, workerGraceMs, workerSetupVariable, type WorkerSetup } from './cluster-worker.ts';
import { createProgramLogger, endLogger } from '../runtime/logger.ts';

if (!cluster.isWorker || process.send === undefined) {
  console.error('worker-entry: this is a token service worker, started by `berth token-service`');
  process.exit(2);
}
const setup = JSON.parse(process.env[workerSetupVariable] ?? '{}') as WorkerSetup;
const logger = createProgramLogger('token-service', setup.logLevel, { worker: cluster.worker?.id });
let exiting = false;
const exit = (code: number) => {
  if (exiting) return;
  exiting = true;
  void endLogger(logger).then(() => process.exit(code));
};
const worker = await runTokenWorker(setup, {
  logger,
  exit,
  channel: {
    send: (m) =>
      new Promise<void>((resolve) => {
        if (!process.connected || !process.send) return resolve();
        process.send(m, undefined, {}, () => resolve());
      }),
    onMessage: (l) => process.on('message', l),
    onDisconnect: (l) => process.once('disconnect', l),
  },
});
// A terminal's Ctrl-C reaches every process of the group; the primary orchestrates the stop, but
// a worker signalled alone stops gracefully too (and the primary replaces it).
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.once(signal, () => void worker.stop(workerGraceMs).then(() => exit(0)));
