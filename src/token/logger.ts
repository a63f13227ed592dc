// The token service's log: JSON lines on stdout (the audit log of every token issued or refused).
import winston from 'winston';

/** A JSON logger at `level`; `meta` is added to every line (a worker adds its number). */
export function createJsonLogger(level: string, meta: Record<string, unknown> = {}): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { component: 'token-service', ...meta },
    transports: [new winston.transports.Console()],
  });
}

/** Flushes the logger (safe to call more than once). */
export function endLogger(logger: winston.Logger): Promise<void> {
  return new Promise((resolve) => {
    if (logger.writableEnded) return resolve();
    logger.once('finish', () => resolve());
    logger.end();
  });
}
