/**
 * What a live link logs through: the part of pino's Logger it uses (host code cannot import the
 * harness's logger, docs/design.md 2). A pino logger fits as it is; tests may pass a recorder.
 */
export interface LinkLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** A logger that drops everything. */
export const silentLinkLogger: LinkLogger = { debug: () => {}, info: () => {}, warn: () => {} };
