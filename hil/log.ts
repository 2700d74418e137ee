import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

/**
 * Logs (CONVENTIONS 12): pino, to stderr, pretty on a terminal and JSON lines otherwise; stdout
 * is kept for the command's own output. One root logger per process, a child per module.
 */
export function createLogger(level = process.env.MIRRORLAB_LOG ?? 'info'): Logger {
  const options = { level, base: undefined };
  if (process.stderr.isTTY) {
    return pino(options, pretty({ destination: 2, colorize: true, ignore: 'pid,hostname', sync: true }));
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}

export type { Logger };
