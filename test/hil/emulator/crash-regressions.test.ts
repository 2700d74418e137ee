import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addEmulateFlags, emulateOptionsFrom, type EmulateFlags } from '../../../hil/cli/emulate-command.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';

/**
 * Runs a 1,000-seed campaign with crashes and power cuts drawn found inconsistent, kept as they
 * were reported (the reproduce command's flags), each beside the bug it found:
 * docs/tag-tables.md, "Crash and power cut in the simulator" and "Suspension".
 */
function options(argv: string): ReturnType<typeof emulateOptionsFrom> {
  const cmd = addEmulateFlags(new Command('emulate')).exitOverride();
  cmd.parse(argv.split(' '), { from: 'user' });
  return emulateOptionsFrom(cmd.opts() as EmulateFlags);
}

const found: [string, string][] = [
  [
    'a host write held by the write fence at the crash went to the crashed controller\'s disk when the fence let it go (data-intact: a sector holds a write no host ever issued)',
    '--seed 100166 --mode async --writes 1000 --pattern hot --heartbeat-ms 10 --interruption-ms 100 --probation-ms 200 --source-volume mem:16MiB --target-volume mem:16MiB --faults reorder=0.02,delay=0.05@0.5ms,partition=2,bandwidth=10@19ms,hbloss=0.5,flap=3@2500ms@37ms,crash=source@10ms+2000ms --lock-contention 0.1 --disk-reorder --locks implied',
  ],
  [
    'a power cut while the controller read its metadata to restart was reported as a firmware that cannot come back (firmware-error)',
    '--seed 100313 --mode async --on-lock-reject retransmit --writes 1000 --queue-depth 32 --pattern hot --rtt-ms 2 --connections 1 --source-volume raid10:4x8MiB:chunk=16KiB --target-volume mem:16MiB --faults corrupt=0.02,duplicate=0.0005,crash=source@4ms+30ms,power=source@35ms+5ms --lock-contention 0.01 --disk-reorder',
  ],
  [
    'the peer\'s restart, seen while the mirror was suspended, made it needs-resync while its hosts were still acknowledged locally (ack-after-apply)',
    '--seed 100350 --mode sync --writes 1000 --queue-depth 1 --rtt-ms 2 --heartbeat-ms 20 --interruption-ms 200 --probation-ms 400 --source-volume raid10:4x8MiB:chunk=16KiB --target-volume raid10:4x8MiB:chunk=16KiB --faults drop=0.01:ACK,corrupt=0.05,delay=0.001@5ms,partition=1,bandwidth=500@12ms,silent=41ms+5369ms,silent=7743ms+5838ms,crash=target@48ms+5ms --disk-faults fail=source:3@21ms --lock-contention 0.1 --disk-reorder --batch',
  ],
  [
    'a write taken while the mirror was suspended, acknowledged locally once its data was on the disk after the link came back (the checker took the mirror\'s state at the acknowledgement for the write\'s)',
    '--seed 100249 --mode speculative --writes 1000 --queue-depth 1 --pattern sequential --rtt-ms 0.2 --connections 3 --source-volume mem:16MiB --target-volume mem:16MiB --faults drop=0.02:LOCK_REJECTED,duplicate=0.01,reorder=0.002,partition=1,oneway=A>B@20ms+3593ms,reset=0.002,crash=target@58ms+5ms --disk-faults slow=source:0:8 --lock-contention 0.2 --disk-reorder --locks implied',
  ],
  [
    'a resync chunk longer on a 10 Mbit/s link than the interruption timeout starved the heartbeats behind it: the link went down at every resend, forever (liveness); the simulated link now lets a long frame be heard as it arrives',
    '--seed 100598 --mode async --writes 1000 --queue-depth 4 --pattern hot --rtt-ms 0.2 --connections 3 --heartbeat-ms 20 --interruption-ms 200 --probation-ms 400 --source-volume raid5:3x8MiB:chunk=16KiB --target-volume raid1:2x16MiB --faults drop=0.02,bandwidth=10@9ms,reset=0.01,crash=source@44ms+100ms,power=source@182ms+5ms --disk-reorder',
  ],
  [
    'a power cut took async writes that were on the source\'s disk and not yet flushed (acknowledged, by design, before the flush): the checker took that for a lost write (data-intact); it now knows which writes a cut may take (local.durable)',
    '--seed 300815 --mode async --on-lock-reject retransmit --writes 438 --pattern hot --rtt-ms 2 --connections 3 --source-volume mem:16MiB --target-volume raid10:4x8MiB:chunk=16KiB --faults flap=4@2500ms@40ms,reset=0.002,power=source@5ms+5ms --disk-reorder --locks implied',
  ],
];

describe('crash and suspension bugs campaigns found', () => {
  it.each(found)('%s', async (_bug, argv) => {
    const r = await runEmulation(options(argv));
    expect(r.violations, r.violations.map((v) => v.message).join('\n')).toEqual([]);
    expect(r.verdict).toBe('consistent');
    expect(r.crashes).toBeGreaterThan(0);
  }, 60_000);
});
