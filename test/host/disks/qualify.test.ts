import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { buildVolume, formatVolumeSpec, parseVolumeSpec, withKernelDriverDetach } from '../../../host/disks/volume-spec.ts';
import { blockDeviceContract } from './contract.ts';

/**
 * Qualifying a real device (docs/conventions.md 4: cases that need hardware run when an
 * environment variable names the device): the BlockDevice contract suite against the volume
 * MIRRORLAB_QUALIFY_VOLUME names (a usb: stick or a serial-disk: board), each case on a freshly
 * opened volume. The suite writes over sectors at both ends of the device, so it runs only with
 * MIRRORLAB_QUALIFY_DESTROY_DATA=yes; `npm run qualify -- SPEC --destroy-data` sets both
 * (scripts/qualify.mjs). Unset, the suite is reported as skipped.
 */
const text = process.env.MIRRORLAB_QUALIFY_VOLUME ?? '';
const destroy = process.env.MIRRORLAB_QUALIFY_DESTROY_DATA === 'yes';
const detach = process.env.MIRRORLAB_QUALIFY_DETACH_KERNEL_DRIVER === 'yes';

describe.skipIf(text === '')('qualifying the device MIRRORLAB_QUALIFY_VOLUME names', () => {
  it('is allowed to destroy the data on it', () => {
    expect(destroy, 'set MIRRORLAB_QUALIFY_DESTROY_DATA=yes (npm run qualify -- SPEC --destroy-data): the contract overwrites sectors at both ends').toBe(true);
  });
});

if (text !== '' && destroy) {
  const parsed = parseVolumeSpec(text);
  const spec = detach ? withKernelDriverDetach(parsed) : parsed;
  blockDeviceContract(`qualification of ${formatVolumeSpec(spec)}`, async () => {
    const clock = new VirtualClock();
    const volume = await buildVolume(spec, { name: formatVolumeSpec(spec), clock, faultOverlay: false });
    return { device: volume.device, clock, close: () => volume.close() };
  }, { sectorSizes: [spec.sectorSize] });
}
