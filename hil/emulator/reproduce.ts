import { formatVolumeSpec } from '../../host/disks/volume-spec.ts';
import { formatDiskFaults } from '../faults/disk-fault-plan.ts';
import { formatLinkFaults } from '../faults/link-fault-plan.ts';
import { DEFAULT_EMULATE, type EmulateOptions } from './options.ts';

/** Quote a shell word only when it needs it. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=@+%,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The one command that reproduces a run (docs/design.md 2.5): seed and mode always, every other option
 * only where it differs from the default. The CLI's parser reads it back to the same options
 * (tested), so a failure printed by a campaign can be pasted into a shell as it is.
 */
export function reproduceCommand(o: EmulateOptions): string {
  const d = DEFAULT_EMULATE;
  const args: string[] = ['npx', 'mirrorlab', 'emulate', '--seed', String(o.seed), '--mode', o.mode];
  const flag = (name: string, value: string | number, dflt: string | number): void => {
    if (value !== dflt) args.push(name, shellWord(String(value)));
  };
  flag('--on-lock-reject', o.onLockReject, d.onLockReject);
  if (o.bidirectional) args.push('--bidirectional');
  flag('--writes', o.writes, d.writes);
  flag('--duration-ms', o.durationMs, d.durationMs);
  flag('--write-bytes', o.writeBytes, d.writeBytes);
  flag('--queue-depth', o.queueDepth, d.queueDepth);
  flag('--pattern', o.pattern, d.pattern);
  flag('--read-percent', o.readPercent, d.readPercent);
  if (o.thinkMs !== undefined && o.thinkMs > 0) args.push('--think-ms', String(o.thinkMs));
  flag('--rtt-ms', o.rttMs, d.rttMs);
  flag('--bandwidth-mbps', o.bandwidthMbps, d.bandwidthMbps);
  flag('--connections', o.connections, d.connections);
  flag('--heartbeat-ms', o.heartbeatMs, d.heartbeatMs);
  flag('--interruption-ms', o.interruptionMs, d.interruptionMs);
  flag('--probation-ms', o.probationMs, d.probationMs);
  flag('--source-volume', formatVolumeSpec(o.sourceVolume), formatVolumeSpec(d.sourceVolume));
  flag('--target-volume', formatVolumeSpec(o.targetVolume), formatVolumeSpec(d.targetVolume));
  if (o.lockRegionSectors !== undefined) args.push('--lock-region-sectors', String(o.lockRegionSectors));
  flag('--faults', formatLinkFaults(o.faults), 'none');
  flag('--disk-faults', formatDiskFaults(o.diskFaults), 'none');
  flag('--lock-contention', o.lockContentionPerMillion / 1_000_000, d.lockContentionPerMillion / 1_000_000);
  flag('--heal-ms', o.healMs, d.healMs);
  flag('--fault-phase-max-ms', o.faultPhaseMsMax, d.faultPhaseMsMax);
  if (o.stallMs !== undefined) args.push('--stall-ms', String(o.stallMs));
  if (o.diskReorder === true) args.push('--disk-reorder');
  if (o.locks === 'implied') args.push('--locks', 'implied');
  if (o.batch === true) args.push('--batch');
  return args.join(' ');
}
