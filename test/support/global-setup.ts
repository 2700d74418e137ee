import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Once per `vitest run`: commands the tests start (campaigns record their results) write their
 * history to a temporary directory, never to the user's ~/.mirrorlab.
 */
export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'mirrorlab-test-history-'));
  process.env.MIRRORLAB_HISTORY = join(dir, 'history.db');
  return () => rmSync(dir, { recursive: true, force: true });
}
