import { setTimeout as sleep } from 'node:timers/promises';
import { RealClock } from '../../../host/clock/real.ts';
import { SeededRandom } from '../../../host/random.ts';
import { silentLinkLogger } from '../../../host/transports/link-logger.ts';
import { openLiveLink, parseLiveLinkSpec } from '../../../host/transports/live-link.ts';
import { EmulatedUsbLinkDevice, emulatedUsbEnvironment, type UsbLinkFaultPlan } from '../../../host/transports/usb-link-emulated.ts';
import { UsbLink, type UsbLinkOptions } from '../../../host/transports/usb-link.ts';
import type { LinkPair } from './link-contract.ts';

export type UsbLinkPair = LinkPair & { host: UsbLink; device: EmulatedUsbLinkDevice; clock: RealClock };

export interface UsbLinkPairOptions {
  seed?: number;
  faults?: UsbLinkFaultPlan;
  sendQueueBytesMax?: number;
  inBufferBytesMax?: number;
  reattachMs?: number;
  link?: Partial<Pick<UsbLinkOptions, 'transferBytesMax' | 'inTimeoutMs' | 'reopenIntervalMs' | 'reopenAttemptsMax'>>;
}

/**
 * A USB link pair on the real clock: `a` is the host side, opened through `openLiveLink` from the
 * spec text `usb-link:1209:4d4d` as a controller's config would give it, over an emulated device
 * whose gadget endpoint is `b` (the board's side); with `link` options, through `UsbLink.open` itself. `reset` unplugs the device (it re-attaches
 * `reattachMs` later).
 */
export async function usbLinkPair(o: UsbLinkPairOptions = {}): Promise<UsbLinkPair> {
  const clock = new RealClock();
  const device = new EmulatedUsbLinkDevice({
    clock, random: new SeededRandom(o.seed ?? 1).fork('usb-link'), faults: o.faults, gadgetName: 'B',
    inBufferBytesMax: o.inBufferBytesMax, reattachMs: o.reattachMs,
  });
  const env = emulatedUsbEnvironment([device]);
  const common = { clock, logger: silentLinkLogger, localName: 'A', peerName: 'B', sendQueueBytesMax: o.sendQueueBytesMax };
  const host = o.link === undefined
    ? (await openLiveLink(parseLiveLinkSpec('usb-link:1209:4d4d'), { ...common, usbEnvironment: env })) as UsbLink
    : await UsbLink.open({ ...common, ...o.link, vendorId: device.vendorId, productId: device.productId, serial: null, env });
  return {
    a: host, b: device.gadget, host, device, clock,
    wait: (ms) => sleep(ms),
    reset: () => device.unplug(),
    close: async () => {
      device.gadget.shutdown();
      await host.shutdown();
      device.dispose();
    },
  };
}
