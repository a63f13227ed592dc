// Child process of bench/token.ts: berth's token service, started from a JSON configuration
// (argv[2]), with its audit log formatted as in production but written to /dev/null. Reports
// its URL over IPC and stops on SIGTERM.
import { createWriteStream } from 'node:fs';
import winston from 'winston';
import { startTokenService, type TokenServiceConfig } from '../../src/token/service.ts';

const config = JSON.parse(process.argv[2] ?? '{}') as TokenServiceConfig;
const logger = winston.createLogger({
  format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
  transports: [new winston.transports.Stream({ stream: createWriteStream('/dev/null') })],
});
const service = await startTokenService(config, { logger });
process.send?.({ url: service.server.url });
process.once('SIGTERM', () => {
  void service.stop().then(() => process.exit(0));
});
