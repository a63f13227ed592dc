// Child process of bench/token.ts: berth's token service as `berth token-service` runs it, from
// a JSON setup (argv[2]: the configuration and the worker count; 1 is a single process, more a
// node:cluster primary with its workers). Its audit log is the production one (JSON lines on
// stdout), and the bench points stdout at /dev/null. Reports its URL and process ids over IPC
// and stops on SIGTERM.
import { startTokenCluster } from '../../src/token/cluster-primary.ts';
import { createProgramLogger } from '../../src/runtime/logger.ts';
import { startTokenService, type TokenServiceConfig } from '../../src/token/service.ts';

export interface BenchServerSetup {
  config: TokenServiceConfig;
  workers: number;
}

const setup = JSON.parse(process.argv[2] ?? '{}') as BenchServerSetup;
const logger = createProgramLogger('token-service');
let stop: (graceMs: number) => Promise<void>;
if (setup.workers === 1) {
  const service = await startTokenService(setup.config, { logger });
  process.send?.({ url: service.server.url, pids: [process.pid] });
  stop = service.stop;
} else {
  const service = await startTokenCluster(
    { config: setup.config, logLevel: 'info', workers: setup.workers },
    { logger },
  );
  process.send?.({ url: service.url, pids: [process.pid, ...service.workerPids()] });
  stop = service.stop;
}
process.once('SIGTERM', () => {
  void stop(0).then(() => process.exit(0));
});
