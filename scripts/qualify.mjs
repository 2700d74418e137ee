#!/usr/bin/env node
// `npm run qualify -- SPEC --destroy-data [--detach-kernel-driver]`: runs the BlockDevice contract
// suite (test/host/disks/contract.ts) against a real device, a usb: stick or a serial-disk: board,
// through test/host/disks/qualify.test.ts. The suite overwrites sectors at both ends of the
// device, so without --destroy-data nothing is opened: the command refuses and exits 2.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const root = fileURLToPath(new URL('..', import.meta.url));
const usage = 'usage: npm run qualify -- SPEC --destroy-data [--detach-kernel-driver]   (SPEC e.g. usb:0781:5581 or serial-disk:/dev/ttyUSB0:115200)';
const args = process.argv.slice(2);
const flags = new Set(args.filter((a) => a.startsWith('--')));
const specs = args.filter((a) => !a.startsWith('--'));
const unknown = [...flags].filter((f) => f !== '--destroy-data' && f !== '--detach-kernel-driver');

function refuse(message) {
  process.stderr.write(`error: ${message}\n${usage}\n`);
  process.exit(2);
}

if (unknown.length > 0) refuse(`unknown flag ${unknown[0]}; allowed: --destroy-data, --detach-kernel-driver`);
if (specs.length !== 1) refuse(specs.length === 0 ? 'name the device to qualify' : `name one device, not ${specs.length}`);
const { parseVolumeSpec, formatVolumeSpec, buildVolume, withKernelDriverDetach } = await import('../host/disks/volume-spec.ts');
const { RealClock } = await import('../host/clock/real.ts');
let spec;
try {
  spec = parseVolumeSpec(specs[0]);
} catch (error) {
  refuse(error.message);
}
if (!flags.has('--destroy-data')) {
  refuse(`qualifying ${formatVolumeSpec(spec)} runs the BlockDevice contract suite on it, which overwrites sectors at both ends of the device and destroys what they held; pass --destroy-data to go ahead`);
}
// Open it once here: a device that is absent, in use or mounted is one line and exit 2, not a page of failed tests.
try {
  const probe = flags.has('--detach-kernel-driver') ? withKernelDriverDetach(spec) : spec;
  const volume = await buildVolume(probe, { name: formatVolumeSpec(spec), clock: new RealClock(), faultOverlay: false });
  await volume.close();
} catch (error) {
  if (typeof error?.code !== 'string' || !error.code.startsWith('ML_ERR_')) throw error;
  refuse(`${error.code}: ${error.message}`);
}
const env = {
  ...process.env,
  MIRRORLAB_QUALIFY_VOLUME: formatVolumeSpec(spec),
  MIRRORLAB_QUALIFY_DESTROY_DATA: 'yes',
  MIRRORLAB_QUALIFY_DETACH_KERNEL_DRIVER: flags.has('--detach-kernel-driver') ? 'yes' : 'no',
};
const vitest = spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', 'test/host/disks/qualify.test.ts'], { cwd: root, env, stdio: 'inherit' });
process.exit(vitest.status ?? 70);
