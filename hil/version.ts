import { readFileSync } from 'node:fs';

/** mirrorlab's version, from package.json: what reports and process telemetry name. */
export const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
