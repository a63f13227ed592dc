// JSON logs in the Kubernetes style: a capitalised, past-tense message ("Reconciled object") and
// structured fields (controller, namespace, name, reconcileID, error), one object per line.
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

/** A logger that drops everything (for unit tests). */
export function silentLogger(): Logger {
  return winston.createLogger({
    silent: true,
    transports: [new winston.transports.Console({ silent: true })],
  });
}
