import { describe, expect, it } from 'vitest';
import { runControllerCase } from '../../hil/fuzz/controller-target.ts';

/**
 * Controller fuzz cases that once failed, replayed exactly (a case is a pure function of its seed
 * and index: docs/fuzzing.md). Each names the bug it found; with the fix reverted, it fails again.
 */
describe('controller fuzz regressions', () => {
  it('seed 1 case 35: a lock session closed twice after a stream restart', async () => {
    // Giving back a reused session's LOCK/UNLOCK room placed waiting writes, which ended that
    // session; the write being placed then touched it back into the open list, closed.
    const out = await runControllerCase(1, 35);
    expect(out.failures).toEqual([]);
  }, 60_000);

  it('seed 1 case 29: after a stream restart the mirror settles in sync', async () => {
    // It did not settle (mirror left needing a resync) before the lock-session re-entrancy fixes:
    // a session's writes all go in before any is told it was placed, and a reused session's room
    // goes back only once its write is in.
    const out = await runControllerCase(1, 29);
    expect(out.failures).toEqual([]);
  }, 60_000);

  it('seed 10 case 1: a header declaring a payload its type never carries no longer swallows an inline link', async () => {
    // A sound RESYNC_ACK header declaring a megabyte was waited for, byte by byte: on a link whose
    // heartbeats travel inline, the restarted peer's HELLO and heartbeats all went into it, and the
    // link looked alive for ever. Such a length is now refused from the header.
    const out = await runControllerCase(10, 1);
    expect(out.failures).toEqual([]);
  }, 60_000);
});
