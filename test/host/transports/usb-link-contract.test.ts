import { linkContract } from './link-contract.ts';
import { usbLinkPair } from './usb-link-pairs.ts';

/**
 * The link contract on the USB link (heartbeats inline), host side against the emulated device's
 * gadget end: clean, and with the pipe faults a correct host hides from the firmware (STALLs on
 * both pipes cleared, short and zero-length IN packets). The contract's reset case is a
 * disconnect of the device: both ends hear closed. A USB pipe cannot be made to black-hole.
 */
const can = {
  backpressure: true,
  reset: true,
  blackhole: 'a USB pipe cannot lose bytes silently: a transfer either completes or fails, and a device that goes is heard of',
};
const small = { sendQueueBytesMax: 16 * 1024, inBufferBytesMax: 16 * 1024 };

linkContract('usb-link over the emulated device', () => usbLinkPair({ seed: 1, ...small }),
  { connections: 1, heartbeats: 'inline', can, settleMs: 300 });
linkContract('usb-link over the emulated device with STALLs, short and zero-length packets', () => usbLinkPair({
  seed: 2, ...small, faults: { 'stall-in': 50_000, 'stall-out': 50_000, short: 100_000, zlp: 50_000 },
}), { connections: 1, heartbeats: 'inline', can, settleMs: 300 });
