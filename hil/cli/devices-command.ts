import { Command } from 'commander';
import { listAttachedDevices, type DeviceListing, type DiscoverySources } from '../../host/disks/discovery.ts';

/**
 * `mirrorlab devices [--json]`: the storage targets attached here, serial ports and USB devices,
 * with the volume spec naming each. An empty list (no USB bus, no udev) exits 0: it is an answer.
 */
export function devicesCommand(exit: (code: number) => void, sources: DiscoverySources = {}): Command {
  return new Command('devices')
    .description('list the serial ports and USB devices attached here (VID:PID, serial number, mass storage or not, mirror link or not, free or held), with the volume or link spec naming each')
    .option('--json', 'print exactly one JSON document on stdout', false)
    .action(async (flags: { json: boolean }) => {
      const listing = await listAttachedDevices(sources);
      process.stdout.write(flags.json ? `${JSON.stringify(listing, null, 2)}\n` : `${renderDevices(listing)}\n`);
      exit(0);
    });
}

const yesNo = (v: boolean | null): string => (v === null ? '?' : v ? 'yes' : 'no');

export function renderDevices(d: DeviceListing): string {
  const lines = ['serial ports'];
  if (d.serial.length === 0) lines.push('  (none)');
  for (const p of d.serial) {
    const id = p.vendorId && p.productId ? `${p.vendorId}:${p.productId}` : '-';
    lines.push(`  ${p.path.padEnd(24)} ${id.padEnd(9)} ${(p.manufacturer ?? '-').padEnd(20)} ${p.spec}`);
  }
  lines.push('', 'USB devices');
  if (d.usb.length === 0) lines.push('  (none)');
  else lines.push(`  ${'VID:PID'.padEnd(9)} ${'serial'.padEnd(20)} ${'storage'.padEnd(7)} ${'link'.padEnd(4)} ${'free'.padEnd(4)} ${'product'.padEnd(24)} spec`);
  for (const u of d.usb) {
    const spec = u.massStorage !== true && u.linkSpec !== null ? u.linkSpec : u.spec;
    lines.push(`  ${`${u.vendorId}:${u.productId}`.padEnd(9)} ${(u.serialNumber ?? '-').padEnd(20)} ${yesNo(u.massStorage).padEnd(7)} ${yesNo(u.mirrorLink).padEnd(4)} ${yesNo(u.free).padEnd(4)} ${(u.product ?? '-').padEnd(24)} ${spec}`);
    if (u.massStorage === true && u.linkSpec !== null) lines.push(`  ${''.padEnd(9)} mirror link: ${u.linkSpec}`);
    if (u.busy.length > 0) lines.push(`  ${''.padEnd(9)} busy: ${u.busy.join('; ')}`);
  }
  if (d.notes.length > 0) lines.push('', ...d.notes.map((n) => `note: ${n}`));
  return lines.join('\n');
}
