import { describe, expect, it } from 'vitest';
import { resyncText } from '../../../hil/cli/progress.ts';

describe('the emulator progress line', () => {
  it('tells how far resyncs have come, and says nothing when every mirror is in sync', () => {
    expect(resyncText({ resync: null })).toBe('');
    expect(resyncText({ resync: { mirrors: 1, doneSectors: 0, totalSectors: 0 } })).toBe(', 1 mirror to resync');
    expect(resyncText({ resync: { mirrors: 2, doneSectors: 300, totalSectors: 1024 } })).toBe(', resync 29% of 1024 sectors');
  });
});
