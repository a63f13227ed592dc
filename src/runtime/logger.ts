// berth's one logger setup, winston writing one JSON object per line:
// - the operator's (createLogger): the Kubernetes style, a capitalised, past-tense message
//   ("Reconciled object") and structured fields (controller, namespace, name, reconcileID, error),
//   the time as `ts`, on stderr;
// - the programs' that run in pods and Jobs (createProgramLogger: the token service, the node agent,
//   the retention run): the time as `timestamp` and a `component` field on every line, on stdout,
//   where the token service's audit lines are read from.
// endLogger flushes either before a program exits.
import { Writable } from 'node:stream';
import winston from 'winston';

export type Logger = winston.Logger;
export const logLevels = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof logLevels)[number];

export function createLogger(level: LogLevel, stream: NodeJS.WritableStream = process.stderr): Logger {
  return winston.createLogger({
    level,
    levels: { error: 0, warn: 1, info: 2, debug: 3 },
    format: winston.format.combine(
      winston.format.timestamp({ alias: 'ts' }),
      winston.format((info) => {
        delete info.timestamp;
        return info;
      })(),
      winston.format.json(),
    ),
    transports: [new winston.transports.Stream({ stream })],
  });
}

/** A JSON logger that keeps its lines, for tests that read what was logged (audit lines, leaks). */
export function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const logger = winston.createLogger({
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream })],
  });
  return { logger, lines };
}

/** A logger that drops everything (for unit tests). */
export function silentLogger(): Logger {
  return winston.createLogger({
    silent: true,
    transports: [new winston.transports.Console({ silent: true })],
  });
}

/** The log of a program in a pod or Job: `component` (and `meta`) on every line, on stdout. */
export function createProgramLogger(
  component: string,
  level: string = 'info',
  meta: Record<string, unknown> = {},
): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { component, ...meta },
    transports: [new winston.transports.Console()],
  });
}

/** Flushes the logger (safe to call more than once). */
export function endLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    if (logger.writableEnded) return resolve();
    logger.once('finish', () => resolve());
    logger.end();
  });
}
