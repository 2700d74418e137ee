import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { LinkHandler } from '../../../firmware/ports/link.ts';
import { encodeFrame } from '../../../firmware/protocol/encode.ts';
import { FrameType } from '../../../firmware/protocol/frame.ts';
import { RealClock } from '../../../host/clock/real.ts';
import { listAttachedDevices } from '../../../host/disks/discovery.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { EmulatedUsbMassStorage } from '../../../host/disks/usb/emulated/emulated-usb-device.ts';
import type { ListedUsbDevice, UsbEnvironment } from '../../../host/disks/usb/open-usb.ts';
import { UsbSysfs } from '../../../host/disks/usb/sysfs.ts';
import { SeededRandom } from '../../../host/random.ts';
import { silentLinkLogger } from '../../../host/transports/link-logger.ts';
import { LiveLinkError, formatLiveLinkSpec, parseLiveLinkSpec } from '../../../host/transports/live-link.ts';
import {
  EmulatedUsbLinkDevice,
  USB_LINK_EMULATED_BULK_IN,
  USB_LINK_EMULATED_BULK_OUT,
  emulatedUsbEnvironment,
} from '../../../host/transports/usb-link-emulated.ts';
import { UsbLink } from '../../../host/transports/usb-link.ts';
import { renderDevices } from '../../../hil/cli/devices-command.ts';
import { scratchDir } from '../../support/scratch-dir.ts';
import { usbLinkPair } from './usb-link-pairs.ts';

/**
 * The USB link's own behaviour beyond the contract: its spec, finding and claiming the device
 * (and refusing what must be refused), the transfer size bound, STALLs, a device that goes and
 * comes back, the gadget side's bound, and how `mirrorlab devices` shows a link device.
 */
const clock = new RealClock();
const linkDevice = (o: { serial?: string; faults?: ConstructorParameters<typeof EmulatedUsbLinkDevice>[0]['faults'] } = {}) =>
  new EmulatedUsbLinkDevice({ clock, random: new SeededRandom(5), serialNumber: o.serial, faults: o.faults });
const openLink = (env: UsbEnvironment, extra: { serial?: string | null; transferBytesMax?: number; reopenAttemptsMax?: number; reopenIntervalMs?: number } = {}) =>
  UsbLink.open({ clock, logger: silentLinkLogger, localName: 'A', peerName: 'B', vendorId: 0x1209, productId: 0x4d4d, serial: null, env, ...extra });
const failure = async (p: Promise<unknown>): Promise<LiveLinkError> => {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(LiveLinkError);
  return e as LiveLinkError;
};

/** A handler that records what it hears. */
class Recorder implements LinkHandler {
  readonly chunks: Uint8Array[] = [];
  readonly reasons: string[] = [];
  opens = 0;
  writables = 0;
  opened(): void {
    this.opens++;
  }
  closed(_conn: number, reason: string): void {
    this.reasons.push(reason);
  }
  bytes(_conn: number, chunk: Uint8Array): void {
    this.chunks.push(chunk);
  }
  datagram(): void {}
  writable(): void {
    this.writables++;
  }
  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

async function until(cond: () => boolean, what: string, budgetMs = 3000): Promise<void> {
  for (let waited = 0; !cond(); waited += 5) {
    if (waited >= budgetMs) expect.fail(`${what}: not within ${budgetMs} ms`);
    await sleep(5);
  }
}

describe('usb-link specs', () => {
  it('reads usb-link:VID:PID[:SERIAL] and prints it back', () => {
    expect(parseLiveLinkSpec('usb-link:1209:4D4D')).toEqual({ kind: 'usb-link', vendorId: 0x1209, productId: 0x4d4d, serial: null });
    const withSerial = parseLiveLinkSpec('usb-link:1209:4d4d:BOARD-7:a');
    expect(withSerial).toEqual({ kind: 'usb-link', vendorId: 0x1209, productId: 0x4d4d, serial: 'BOARD-7:a' });
    expect(formatLiveLinkSpec(withSerial)).toBe('usb-link:1209:4d4d:BOARD-7:a');
    expect(formatLiveLinkSpec(parseLiveLinkSpec('usb-link:0001:ffff'))).toBe('usb-link:0001:ffff');
  });

  it.each([
    ['usb-link', /usb-link takes a vendor and a product ID of 4 hex digits each/],
    ['usb-link:12:34', /usb-link takes a vendor and a product ID of 4 hex digits each/],
    ['usb-link:zzzz:0001', /usb-link takes a vendor and a product ID/],
    ['usb-link:1209:4d4d:', /serial number "" is not 1 to 126 printable ASCII characters/],
    ['usb-link:1209:4d4d:a b', /serial number "a b" is not 1 to 126 printable ASCII/],
  ])('refuses %s in one line naming what is allowed', (text, problem) => {
    let error: unknown = null;
    try {
      parseLiveLinkSpec(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LiveLinkError);
    expect((error as LiveLinkError).code).toBe('ML_ERR_LINK_SPEC');
    expect((error as Error).message).toMatch(problem);
    expect((error as Error).message).toMatch(/usb-link:VID:PID\[:SERIAL\]/);
    expect((error as Error).message).not.toMatch(/\n/);
  });
});

/** A fake /sys with the link device 1209:4d4d at 1-3, its vendor interface bound to `driver` (or nothing), and its endpoints. */
const scratch = scratchDir('usb-link-sysfs');
let trees = 0;
async function fakeSys(o: { driver?: string | null; endpoints?: [string, string][] } = {}): Promise<string> {
  const sys = join(scratch.dir(), `sys${trees++}`);
  const put = async (path: string, text: string): Promise<void> => {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, `${text}\n`);
  };
  const devices = join(sys, 'bus/usb/devices');
  await put(join(devices, '1-3/idVendor'), '1209');
  await put(join(devices, '1-3/idProduct'), '4d4d');
  await put(join(devices, '1-3/serial'), 'MLLINK0001');
  const iface = join(devices, '1-3:1.0');
  await put(join(iface, 'bInterfaceNumber'), '00');
  await put(join(iface, 'bInterfaceClass'), 'ff');
  for (const [i, [type, direction]] of (o.endpoints ?? [['Bulk', 'in'], ['Bulk', 'out']]).entries()) {
    const ep = join(iface, `ep_${(direction === 'in' ? 0x81 + i : 0x01 + i).toString(16).padStart(2, '0')}`);
    await put(join(ep, 'type'), type);
    await put(join(ep, 'direction'), direction);
  }
  if (o.driver) {
    await mkdir(join(sys, 'bus/usb/drivers', o.driver), { recursive: true });
    await symlink(join('../../../../bus/usb/drivers', o.driver), join(iface, 'driver'));
  }
  return sys;
}

describe('finding and claiming a USB link device', () => {
  it('says so when nothing is there: no USB devices at all, or others', async () => {
    const none = await failure(openLink(emulatedUsbEnvironment([])));
    expect(none.code).toBe('ML_ERR_LINK_USB_NOT_FOUND');
    expect(none.message).toBe('USB link device 1209:4d4d is not connected (no USB devices are present here); see mirrorlab devices');
    const other = new EmulatedUsbLinkDevice({ clock, random: new SeededRandom(1), productId: 0x0001 });
    expect((await failure(openLink(emulatedUsbEnvironment([other])))).message).toMatch(/is not connected \(present: 1209:0001\)/);
  });

  it('asks for a serial number when several devices match, and takes the one named', async () => {
    const [x, y] = [linkDevice({ serial: 'X1' }), linkDevice({ serial: 'Y2' })];
    const env = emulatedUsbEnvironment([x, y]);
    const ambiguous = await failure(openLink(env));
    expect([ambiguous.code, ambiguous.message]).toEqual(['ML_ERR_LINK_USB_AMBIGUOUS',
      '2 devices match USB link device 1209:4d4d; name one by serial number, usb-link:1209:4d4d:SERIAL (serials: X1, Y2)']);
    const link = await openLink(env, { serial: 'Y2' });
    expect([x.opened, y.opened]).toEqual([false, true]);
    await link.shutdown();
    expect(y.opened, 'shutdown closes the device').toBe(false);
  });

  it('refuses a device without a vendor interface of one bulk IN and one bulk OUT, and closes it again', async () => {
    const stick = new EmulatedUsbMassStorage({ clock, luns: [new MemoryDisk({ name: 'm', sectorCount: 64, clock })], random: new SeededRandom(1), productId: 0x4d4d });
    const e = await failure(openLink(emulatedUsbEnvironment([stick])));
    expect(e.code).toBe('ML_ERR_LINK_USB_INTERFACE');
    expect(e.message).toMatch(/has no vendor-specific interface \(class FFh\) with one bulk IN and one bulk OUT endpoint/);
    expect(stick.opened).toBe(false);
  });

  it('refuses an interface a kernel driver or another program holds, and never detaches the driver', async () => {
    const device = linkDevice() as EmulatedUsbLinkDevice & { detachKernelDriver?: (n: number) => Promise<void> };
    const detached: number[] = [];
    device.detachKernelDriver = async (n) => void detached.push(n);
    const envWith = async (driver: string): Promise<UsbEnvironment> => ({ listDevices: async () => [device] as ListedUsbDevice[], sysfs: new UsbSysfs(await fakeSys({ driver }), '/nonexistent') });
    const kernel = await failure(openLink(await envWith('some_gadget_driver')));
    expect([kernel.code, kernel.message]).toEqual(['ML_ERR_LINK_USB_IN_USE',
      'USB link device 1209:4d4d: its interface 0 is held by the kernel driver some_gadget_driver; a mirror link never detaches a driver: ' +
      'unbind it first (echo the interface name into /sys/bus/usb/drivers/some_gadget_driver/unbind)']);
    const program = await failure(openLink(await envWith('usbfs')));
    expect(program.message).toBe('USB link device 1209:4d4d: another program has claimed its interface 0; close that program first');
    expect([detached, device.opened]).toEqual([[], false]);
    // Claimed by another link in this process: the claim itself is refused.
    const first = await openLink(emulatedUsbEnvironment([device]));
    const second = await failure(openLink(emulatedUsbEnvironment([device])));
    expect(second.code).toBe('ML_ERR_LINK_USB_IN_USE');
    await first.shutdown();
  });
});

describe('moving bytes over the bulk pipes', () => {
  it('sends in OUT transfers of at most transferBytesMax, keeps one IN pending, and delivers every byte in order', async () => {
    const device = linkDevice();
    const link = await openLink(emulatedUsbEnvironment([device]), { transferBytesMax: 4096 });
    const host = new Recorder();
    const gadget = new Recorder();
    link.attach(host);
    device.gadget.attach(gadget);
    link.open(0);
    device.gadget.open(0);
    await until(() => host.opens === 1 && gadget.opens === 1, 'both ends open');
    const sent = Uint8Array.from({ length: 40_000 }, (_, i) => (i * 7) & 0xff);
    for (let at = 0; at < sent.length; at += 3000) expect(link.send(0, sent.subarray(at, at + 3000))).toBe(true);
    const back = Uint8Array.from({ length: 30_000 }, (_, i) => (i * 13) & 0xff);
    for (let at = 0; at < back.length; at += 5000) expect(device.gadget.send(0, back.subarray(at, at + 5000))).toBe(true);
    await until(() => gadget.received.length === sent.length && host.received.length === back.length, 'every byte both ways');
    expect(Buffer.compare(gadget.received, sent)).toBe(0);
    expect(Buffer.compare(host.received, back)).toBe(0);
    expect(device.stats.outTransferBytesMax).toBe(4096);
    expect(device.stats.inPendingMax).toBe(1);
    expect(Math.max(...host.chunks.map((c) => c.length))).toBeLessThanOrEqual(4096);
    await link.shutdown();
    device.dispose();
  });

  it('the emulated device holds a STALL until it is cleared: a host that never clears one gets nothing more', async () => {
    const device = linkDevice({ faults: { 'stall-in': 500_000 } });
    await device.open();
    await device.selectConfiguration(1);
    await device.claimInterface(0);
    device.gadget.open(0);
    await until(() => device.gadget.send(0, Uint8Array.of(1, 2, 3)), 'the gadget sends');
    let r = await device.transferIn(USB_LINK_EMULATED_BULK_IN, 512, 50);
    for (let i = 0; r.status !== 'stall' && i < 50; i++) {
      expect(device.gadget.send(0, Uint8Array.of(9))).toBe(true);
      r = await device.transferIn(USB_LINK_EMULATED_BULK_IN, 512, 50);
    }
    expect(r.status).toBe('stall');
    const struck = device.injected['stall-in'];
    for (let i = 0; i < 3; i++) expect((await device.transferIn(USB_LINK_EMULATED_BULK_IN, 512, 50)).status).toBe('stall');
    expect(device.injected['stall-in'], 'the pipe stayed halted: no new STALL was drawn').toBe(struck);
    let ok = 0;
    for (let i = 0; i < 20 && ok === 0; i++) {
      await device.clearHalt('in', USB_LINK_EMULATED_BULK_IN);
      if ((await device.transferIn(USB_LINK_EMULATED_BULK_IN, 512, 50)).status === 'ok') ok++;
    }
    expect(ok, 'bytes flow again after CLEAR_FEATURE(ENDPOINT_HALT)').toBe(1);
    expect((await device.transferOut(USB_LINK_EMULATED_BULK_OUT, Uint8Array.of(1))).status).toBe('ok');
    device.dispose();
  });

  it('counts the STALLs it cleared on both pipes and loses no byte across them', async () => {
    const pair = await usbLinkPair({ seed: 9, faults: { 'stall-in': 200_000, 'stall-out': 200_000 } });
    const host = new Recorder();
    const gadget = new Recorder();
    pair.a.attach(host);
    pair.b.attach(gadget);
    pair.a.open(0);
    pair.b.open(0);
    await until(() => host.opens === 1 && gadget.opens === 1, 'both ends open');
    const sent = Uint8Array.from({ length: 60_000 }, (_, i) => (i * 31) & 0xff);
    for (let at = 0; at < sent.length; at += 6000) expect(pair.a.send(0, sent.subarray(at, at + 6000))).toBe(true);
    for (let at = 0; at < sent.length; at += 6000) expect(pair.b.send(0, sent.subarray(at, at + 6000))).toBe(true);
    await until(() => gadget.received.length === sent.length && host.received.length === sent.length, 'every byte both ways');
    expect([Buffer.compare(gadget.received, sent), Buffer.compare(host.received, sent)]).toEqual([0, 0]);
    const usb = pair.host.stats().usb!;
    expect([usb.stallsClearedIn, usb.stallsClearedOut]).toEqual([pair.device.injected['stall-in'], pair.device.injected['stall-out']]);
    expect(usb.stallsClearedIn * usb.stallsClearedOut).toBeGreaterThan(0);
    await pair.close!();
  });
});

/** The link device, with OUT transfers that time out (taking nothing) while `outTimeouts` lasts, or forever. */
class TimingOut extends EmulatedUsbLinkDevice {
  outTimeouts = 0;
  override async transferOut(endpointNumber: number, data: Uint8Array) {
    if (this.outTimeouts > 0) {
      this.outTimeouts--;
      await sleep(1);
      throw Object.assign(new Error('LIBUSB_TRANSFER_TIMED_OUT'), { name: 'TimeoutError' });
    }
    return super.transferOut(endpointNumber, data);
  }
}

describe('OUT transfers that time out', () => {
  it('are sent again until the device takes them; a device that never does is lost after transferErrorsMax tries', async () => {
    const device = new TimingOut({ clock, random: new SeededRandom(1) });
    const link = await openLink(emulatedUsbEnvironment([device]));
    const [host, gadget] = [new Recorder(), new Recorder()];
    link.attach(host);
    device.gadget.attach(gadget);
    link.open(0);
    await until(() => host.opens === 1, 'open');
    device.outTimeouts = 5;
    expect(link.send(0, Uint8Array.of(1, 2, 3))).toBe(true);
    await until(() => gadget.received.length === 3, 'the bytes after five timeouts');
    expect([link.stats().usb!.transferErrors, host.reasons]).toEqual([5, []]);
    device.outTimeouts = Number.POSITIVE_INFINITY;
    expect(link.send(0, Uint8Array.of(4))).toBe(true);
    await until(() => host.reasons.length === 1, 'closed once the device has taken nothing for eight tries');
    expect(host.reasons[0]).toBe('USB link device 1209:4d4d: 8 OUT transfers failed in a row, the last: LIBUSB_TRANSFER_TIMED_OUT');
    expect(link.stats().connections[0]!.queuedBytes, 'the queue of a lost device is dropped').toBe(0);
    await link.shutdown();
    device.dispose();
  });
});

describe('a device that goes and comes back', () => {
  it('a heartbeat sent while it is gone looks for it again, and the line works after the re-attach', async () => {
    const pair = await usbLinkPair({ seed: 3, reattachMs: 20 });
    const host = new Recorder();
    const gadget = new Recorder();
    pair.a.attach(host);
    pair.b.attach(gadget);
    pair.device.unplug();
    await until(() => pair.device.present, 're-attached');
    const beat = encodeFrame({ type: FrameType.Heartbeat, lun: 0, seq: 1, flags: 0, controllerId: 1, sessionId: 1, confirmedSeq: 0, peerSession: 0 });
    for (let i = 0; gadget.received.length === 0; i++) {
      if (i > 200) expect.fail('no heartbeat reached the gadget after the re-attach');
      pair.a.sendDatagram(beat);
      await sleep(10);
    }
    expect(pair.host.stats().reopens).toBe(1);
    expect(host.reasons, 'nobody held the connection: nothing to hear closed').toEqual([]);
    await pair.close!();
  });

  it('an open while it stays gone is answered by closed, naming the device, after the bounded attempts', async () => {
    const device = linkDevice();
    const link = await openLink(emulatedUsbEnvironment([device]), { reopenAttemptsMax: 2, reopenIntervalMs: 10 });
    const host = new Recorder();
    link.attach(host);
    link.open(0);
    await until(() => host.opens === 1, 'open');
    device.unplug({ forever: true });
    await until(() => host.reasons.length === 1, 'closed after the unplug');
    expect(host.reasons[0]).toMatch(/^USB link device 1209:4d4d disconnected: /);
    expect(link.send(0, Uint8Array.of(1))).toBe(false);
    link.open(0);
    await until(() => host.reasons.length === 2, 'closed again when it is not found');
    expect(host.reasons[1]).toMatch(/^USB link device 1209:4d4d is gone and was not found again \(2 attempts\): .*is not connected/);
    await link.shutdown();
    await link.shutdown();
    expect(link.stats().connections[0]!.closedHeard).toBe(2);
  });
});

describe('the gadget side', () => {
  it('refuses sends once the device IN buffer is full, and says writable when the host has read it down', async () => {
    const device = new EmulatedUsbLinkDevice({ clock, random: new SeededRandom(1), inBufferBytesMax: 8192 });
    const gadget = new Recorder();
    device.gadget.attach(gadget);
    device.gadget.open(0);
    await until(() => gadget.opens === 1, 'the gadget opens');
    let taken = 0;
    while (device.gadget.send(0, new Uint8Array(1000))) taken += 1000;
    expect(taken).toBe(9000);
    const link = await openLink(emulatedUsbEnvironment([device]));
    const host = new Recorder();
    link.attach(host);
    await until(() => gadget.writables === 1 && host.received.length === 9000, 'the host drains the buffer and the gadget hears writable');
    await link.shutdown();
    device.dispose();
  });
});

describe('mirrorlab devices and USB link devices', () => {
  it('marks a device with the vendor bulk interface as a mirror link and names its link spec', async () => {
    const listing = await listAttachedDevices({ listSerial: async () => [], usb: async () => emulatedUsbEnvironment([linkDevice()]) });
    expect(listing.usb).toEqual([expect.objectContaining({ vendorId: '1209', productId: '4d4d', massStorage: false, mirrorLink: true, linkSpec: 'usb-link:1209:4d4d:MLLINK0001' })]);
    const table = renderDevices(listing);
    expect(table).toMatch(/VID:PID +serial +storage +link +free +product +spec\n/);
    expect(table).toMatch(/1209:4d4d +MLLINK0001 +no +yes +\? +emulated mirror link +usb-link:1209:4d4d:MLLINK0001$/m);
    const stick = new EmulatedUsbMassStorage({ clock, luns: [new MemoryDisk({ name: 'm', sectorCount: 64, clock })], random: new SeededRandom(1) });
    const disks = await listAttachedDevices({ listSerial: async () => [], usb: async () => emulatedUsbEnvironment([stick]) });
    expect(disks.usb[0]).toMatchObject({ mirrorLink: false, linkSpec: null });
  });

  it('reads the interface and its endpoints from sysfs, and says who holds it', async () => {
    const device = linkDevice() as unknown as ListedUsbDevice;
    const list = async (sys: string) => (await listAttachedDevices({ listSerial: async () => [], usb: async () => ({ listDevices: async () => [device], sysfs: new UsbSysfs(sys, '/nonexistent') }) })).usb[0]!;
    expect(await list(await fakeSys())).toMatchObject({ mirrorLink: true, free: true, busy: [], linkSpec: 'usb-link:1209:4d4d:MLLINK0001' });
    expect(await list(await fakeSys({ driver: 'usbfs' }))).toMatchObject({ mirrorLink: true, free: false, busy: ['its link interface is claimed by a program (usbfs)'] });
    expect(await list(await fakeSys({ endpoints: [['Bulk', 'in'], ['Interrupt', 'out']] }))).toMatchObject({ mirrorLink: false, linkSpec: null });
  });
});
