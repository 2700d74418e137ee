import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import { UsageError } from './plan-error.ts';

/** The levels `MIRRORLAB_LOG` may name, most to least severe (pino's own, and `silent`). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Logs (docs/conventions.md 12): pino, to stderr, pretty on a terminal and JSON lines otherwise; stdout
 * is kept for the command's own output. One root logger per process, a child per module
 * (`log.child({ module: 'campaign' })`). The level comes from `MIRRORLAB_LOG` (default `info`, also when empty);
 * an unknown level is a usage error that lists the allowed ones, not pino's stack trace.
 */
export function createLogger(level = process.env.MIRRORLAB_LOG || 'info'): Logger {
  const options = { level: logLevel(level), base: undefined };
  if (process.stderr.isTTY) {
    return pino(options, pretty({ destination: 2, colorize: true, ignore: 'pid,hostname', sync: true }));
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}

/** `text` as a log level (case and surrounding blanks ignored), or a UsageError naming the allowed ones. */
export function logLevel(text: string): LogLevel {
  const level = text.trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level as LogLevel;
  throw new UsageError(`MIRRORLAB_LOG: "${text}" is not a log level; use one of ${LOG_LEVELS.join(', ')}`);
}

export type { Logger };
