import { accessSync, constants, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { MirrorlabError } from '../../firmware/errors.ts';

/** A report file that cannot be written where the user asked: an operating error (exit 2), said in one line. */
export class ReportFileError extends MirrorlabError {
  constructor(readonly path: string, what: string) {
    super('ML_ERR_REPORT_FILE', `report file ${path}: ${what}`);
  }
}

/**
 * Check, before a long campaign or benchmark starts, that `path` can be written at its end: its
 * directory exists and is writable, and the path is not a directory or a read-only file.
 */
export function checkWritable(path: string, flag: string): void {
  const dir = dirname(resolve(path));
  try {
    if (!statSync(dir).isDirectory()) throw new ReportFileError(path, `${dir} is not a directory (${flag})`);
    accessSync(dir, constants.W_OK);
  } catch (err) {
    if (err instanceof ReportFileError) throw err;
    throw new ReportFileError(path, `its directory ${dir} ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'is not writable'} (${flag})`);
  }
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
    accessSync(path, constants.W_OK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ReportFileError(path, `it exists and is not writable (${flag})`);
  }
  if (isDir) throw new ReportFileError(path, `it is a directory; give a file name (${flag})`);
}

/** Write a report whole or not at all: a temporary file beside it, renamed into place. */
export function writeReport(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (err) {
    throw new ReportFileError(path, `could not be written: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
