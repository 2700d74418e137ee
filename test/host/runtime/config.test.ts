import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../../firmware/controller/config.ts';
import {
  ControllerConfigError, configFieldPaths, loadControllerConfig, parseControllerConfig, CONFIG_FILE_BYTES_MAX,
} from '../../../host/runtime/config.ts';
import { EXAMPLE_CONFIG } from '../../../host/runtime/example-config.ts';
import { LIVE_LINK_LIMITS } from '../../../host/transports/live-link.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

const scratch = scratchDir('config');

/** A valid config for A, mirroring LUN 0 to B, with `change` applied to a deep copy. */
function config(change: (c: Record<string, any>) => void = () => {}): string { // eslint-disable-line @typescript-eslint/no-explicit-any
  const c = {
    name: 'A', id: 1,
    luns: [{ lun: 0, volume: 'mem:4MiB', mirror: { peer: 'B', mode: 'speculative' } }, { lun: 1, volume: 'mem:4MiB', replicaOf: 'B' }],
    peers: [{ name: 'B', link: 'tcp-listen:127.0.0.1:7700' }],
  };
  change(c);
  return JSON.stringify(c);
}

/** The one-line message a config gets, without the ML_ERR_ prefix. */
function problem(text: string): string {
  try {
    parseControllerConfig(text, 'a.json');
  } catch (error) {
    expect(error).toBeInstanceOf(ControllerConfigError);
    expect((error as ControllerConfigError).code).toBe('ML_ERR_CONTROLLER_CONFIG');
    const message = (error as Error).message;
    expect(message.split('\n')).toHaveLength(1);
    return message;
  }
  throw new Error('the config was accepted');
}

describe('controller config', () => {
  it('accepts a valid config and fills in the defaults', () => {
    const c = parseControllerConfig(config());
    expect(c.name).toBe('A');
    expect(c.onLockReject).toBe('halt-resume');
    expect(c.luns.map((l) => l.designation)).toEqual([{ role: 'primary', peer: 'B', mode: 'speculative' }, { role: 'replica', of: 'B' }]);
    expect(c.peers[0]!.link).toEqual({ kind: 'tcp', role: 'listen', host: '127.0.0.1', port: 7700, connections: 2 });
    // A process on the real clock takes the live links' ack and NAK floors; the rest are the firmware's defaults.
    expect(c.limits).toEqual({ ...DEFAULT_LIMITS, ...LIVE_LINK_LIMITS });
    expect(c.limits.nakRetryMs).toBe(200);
    expect(parseControllerConfig(config((x) => (x.limits = { nakRetryMs: 50 }))).limits.nakRetryMs).toBe(50);
    expect(c.control).toEqual({ path: null, connectionsMax: 16, requestsInFlightMax: 64, frameTimeoutMs: 10_000 });
    expect(c.shutdown.drainMs).toBe(5_000);
    expect(c.metadata).toBeNull();
  });

  it('takes a metadata volume: a mem or file spec the metadata store can lay out (docs/tag-tables.md, "Bounds")', () => {
    expect(parseControllerConfig(config((c) => (c.metadata = 'mem:4MiB'))).metadata).toEqual({ kind: 'mem', bytes: 4 << 20, sectorSize: 512 });
    expect(parseControllerConfig(config((c) => (c.metadata = 'file:/tmp/a.meta:1MiB:sector=4096'))).metadata)
      .toEqual({ kind: 'file', path: '/tmp/a.meta', bytes: 1 << 20, sectorSize: 4096 });
  });

  it('accepts the example it prints, every field in it', () => {
    const c = parseControllerConfig(JSON.stringify(EXAMPLE_CONFIG));
    expect(c.luns[1]!.volume).toMatchObject({ kind: 'raid-over-files', level: 'raid1' });
    expect(c.limits.heartbeatMs).toBe(100);
    expect(c.telemetry).toBe('/var/log/mirrorlab/A.jsonl');
    expect(c.metadata).toMatchObject({ kind: 'file', path: '/var/lib/mirrorlab/a.meta' });
  });

  it.each([
    ['not JSON', '{"name": "A",', /^a\.json: not valid JSON: /],
    ['not an object', '[1, 2]', /^a\.json: \(top level\): must be an object, got \[1,2\]$/],
    ['a missing field', config((c) => delete c.id), /^a\.json: id: is required \(a number\)$/],
    ['a wrong type', config((c) => (c.id = '1')), /^a\.json: id: must be a number, got "1"$/],
    ['a number out of range', config((c) => (c.id = 2 ** 32)), /^a\.json: id: must be at most 4294967295, got 4294967296$/],
    ['a fraction', config((c) => (c.luns[0].lun = 0.5)), /^a\.json: luns\[0\]\.lun: must be an integer, got 0\.5$/],
    ['an unknown field', config((c) => (c.peer = [])), /^a\.json: \(top level\): unknown field "peer"; the fields here are name, id, onLockReject, luns, peers, supervision, limits, control, telemetry, shutdown, metadata$/],
    ['an unknown nested field', config((c) => (c.luns[0].mirror.policy = 'x')), /^a\.json: luns\[0\]\.mirror: unknown field "policy"; the fields here are peer, mode$/],
    ['a bad mode', config((c) => (c.luns[0].mirror.mode = 'fast')), /^a\.json: luns\[0\]\.mirror\.mode: must be one of "sync", "speculative", "async", got "fast"$/],
    ['a bad policy', config((c) => (c.onLockReject = 'ignore')), /^a\.json: onLockReject: must be one of "halt-resume", "retransmit", got "ignore"$/],
    ['a bad name', config((c) => (c.name = 'a b')), /^a\.json: name: the controller name is 1 to 64 characters/],
    ['no LUNs', config((c) => (c.luns = [])), /^a\.json: luns: needs at least 1 item$/],
    ['a bad volume spec', config((c) => (c.luns[0].volume = 'mem:4XB')), /^a\.json: luns\[0\]\.volume: bad volume spec "mem:4XB": "4XB" is not a size like 64MiB/],
    ['a volume of the wrong type', config((c) => (c.luns[0].volume = 5)), /^a\.json: luns\[0\]\.volume: must be a volume spec .* or a RAID over files/],
    ['a RAID with a bad level', config((c) => (c.luns[0].volume = { raid: 'raid7', members: ['mem:1MiB', 'mem:1MiB'] })), /^a\.json: luns\[0\]\.volume\.raid: must be one of "raid0", "raid1", "raid5", "raid10", got "raid7"$/],
    ['a RAID member of another kind', config((c) => (c.luns[0].volume = { raid: 'raid1', members: ['mem:1MiB', 'raid1:2x1MiB'] })), /^a\.json: luns\[0\]\.volume\.members\[1\]: a RAID member is a file:PATH:SIZE or mem:SIZE spec, not raid1$/],
    ['RAID members of different sizes', config((c) => (c.luns[0].volume = { raid: 'raid1', members: ['mem:1MiB', 'mem:2MiB'] })), /^a\.json: luns\[0\]\.volume\.members\[1\]: every member must have the size/],
    ['a RAID-5 of two', config((c) => (c.luns[0].volume = { raid: 'raid5', members: ['mem:1MiB', 'mem:1MiB'] })), /^a\.json: luns\[0\]\.volume\.members: raid5 takes at least 3 members, not 2$/],
    ['a bad chunk', config((c) => (c.luns[0].volume = { raid: 'raid0', members: ['mem:1MiB', 'mem:1MiB'], chunk: '3KiB' })), /^a\.json: luns\[0\]\.volume\.chunk: 3KiB must be a power of two/],
    ['an attached device as a RAID member', config((c) => (c.luns[0].volume = { raid: 'raid1', members: ['mem:1MiB', 'usb-emu:1MiB'] })), /^a\.json: luns\[0\]\.volume\.members\[1\]: a RAID member is a file:PATH:SIZE or mem:SIZE spec, not usb-emu$/],
    ['one serial port for two LUNs', config((c) => {
      c.luns[0].volume = 'serial-disk:/dev/ttyUSB0';
      c.luns[1].volume = 'serial-disk:/dev/ttyUSB0:921600';
    }), /^a\.json: luns\[1\]\.volume: serial port \/dev\/ttyUSB0 is already used by luns\[0\]\.volume; each port reaches one board, which serves one volume$/],
    ['one USB device LUN for two LUNs', config((c) => {
      c.luns[0].volume = 'usb:0781:5581';
      c.luns[1].volume = 'usb:0781:5581:lun=0';
    }), /^a\.json: luns\[1\]\.volume: USB device 0781:5581 LUN 0 is already used by luns\[0\]\.volume; each device LUN backs one volume$/],
    ['an attached spec that does not parse', config((c) => (c.luns[0].volume = 'usb-emu:4MiB:faults=gremlins')), /^a\.json: luns\[0\]\.volume: bad volume spec "usb-emu:4MiB:faults=gremlins": unknown USB fault "gremlins"/],
    ['a LUN twice', config((c) => (c.luns[1].lun = 0)), /^a\.json: luns\[1\]\.lun: LUN 0 is configured twice \(also luns\[0\]\); each LUN number once$/],
    ['a mirror to an unknown peer', config((c) => (c.luns[0].mirror.peer = 'C')), /^a\.json: luns\[0\]\.mirror\.peer: no peer "C" is configured \(peers: B\); add it under "peers" with its link$/],
    ['a replica of itself', config((c) => (c.luns[1].replicaOf = 'A')), /^a\.json: luns\[1\]\.replicaOf: "A" is this controller; name one of its peers$/],
    ['mirror and replica at once', config((c) => (c.luns[0].replicaOf = 'B')), /^a\.json: luns\[0\]: a LUN is either mirrored to a peer \("mirror"\) or a replica of one \("replicaOf"\), not both$/],
    ['a peer twice', config((c) => c.peers.push({ name: 'B', link: 'tcp:127.0.0.1:1' })), /^a\.json: peers\[1\]\.name: peer "B" is configured twice; each peer once$/],
    ['itself as a peer', config((c) => c.peers.push({ name: 'A', link: 'tcp:127.0.0.1:1' })), /^a\.json: peers\[1\]\.name: a controller is not its own peer/],
    ['a bad link', config((c) => (c.peers[0].link = 'udp:1.2.3.4:5')), /^a\.json: peers\[0\]\.link: bad link spec "udp:1\.2\.3\.4:5": unknown kind "udp"; a link is tcp-listen:HOST:PORT/],
    ['a bad port', config((c) => (c.peers[0].link = 'tcp:127.0.0.1:70000')), /^a\.json: peers\[0\]\.link: bad link spec .*: port "70000" is not an integer from 0 to 65535/],
    ['too many connections', config((c) => (c.peers[0].connections = 17)), /^a\.json: peers\[0\]\.connections: must be at most 16, got 17$/],
    ['an interruption shorter than two heartbeats', config((c) => (c.supervision = { heartbeatMs: 100, interruptionMs: 150 })), /^a\.json: supervision: interruptionMs \(150\) must be at least twice heartbeatMs \(100\)/],
    ['a negative limit', config((c) => (c.limits = { rollbackLogBytesMax: -1 })), /^a\.json: limits\.rollbackLogBytesMax: must be above 0, got -1$/],
    ['an unknown limit', config((c) => (c.limits = { rollbackBytes: 1 })), /^a\.json: limits: unknown field "rollbackBytes"; the fields here are rollbackLogEntriesMax, /],
    ['a lock region that is not a power of two', config((c) => (c.luns[0].lockRegionSectors = 100)), /^a\.json: luns\[0\]\.lockRegionSectors: must be a power of two$/],
    ['a lock region larger than the volume', config((c) => (c.luns[0].lockRegionSectors = 16384)), /^a\.json: luns\[0\]\.lockRegionSectors: 16384 sectors is larger than the volume \(8192 sectors\)$/],
    ['a metadata volume of another kind', config((c) => (c.metadata = 'raid1:2x1MiB')), /^a\.json: metadata: the metadata volume is a file:PATH:SIZE or mem:SIZE spec, not raid1$/],
    ['a metadata volume that is no spec', config((c) => (c.metadata = 'meta.img')), /^a\.json: metadata: bad volume spec "meta\.img": unknown kind "meta\.img"/],
    ['a metadata volume too small', config((c) => (c.metadata = 'mem:16KiB')), /^a\.json: metadata: a metadata area of 32 sectors \(16384 bytes\) is too small for 1 entries, 64 mirrors and 16 streams: .* need 37 sectors \(18944 bytes\)$/],
    ['a metadata volume too large', config((c) => (c.metadata = 'mem:1GiB')), /^a\.json: metadata: a metadata area is at most 268435456 bytes; this one is 1073741824$/],
    ['a LUN\'s image as the metadata volume', config((c) => {
      c.luns[0].volume = 'file:/tmp/x.img:1MiB';
      c.metadata = 'file:/tmp/x.img:1MiB';
    }), /^a\.json: metadata: image \/tmp\/x\.img is already used by luns\[0\]\.volume; the metadata needs an image of its own$/],
    ['one image for two LUNs', config((c) => {
      c.luns[0].volume = 'file:/tmp/x.img:1MiB';
      c.luns[1].volume = { raid: 'raid1', members: ['file:/tmp/y.img:1MiB', 'file:/tmp/x.img:1MiB'] };
    }), /^a\.json: luns\[1\]\.volume\.members\[1\]: image \/tmp\/x\.img is already used by luns\[0\]\.volume; each image backs one disk$/],
    ['a control socket path too long', config((c) => (c.control = { path: `/tmp/${'x'.repeat(120)}.sock` })), /^a\.json: control\.path: a unix socket path is at most 107 bytes, got 130; use a shorter directory$/],
    ['a drain too long', config((c) => (c.shutdown = { drainMs: 10_000_000 })), /^a\.json: shutdown\.drainMs: must be at most 600000, got 10000000$/],
    ['several problems at once', config((c) => {
      c.id = -1;
      c.name = 5;
    }), /^a\.json: name: must be a string, got 5 \(and 1 more problem\)$/],
  ])('refuses %s, naming the field and what is allowed', (_what, text, message) => {
    expect(problem(text)).toMatch(message);
  });

  it('takes attached-target volumes as they are: an emulated USB device, a board on a serial line, a USB device', () => {
    const c = parseControllerConfig(config((x) => {
      x.luns[0].volume = 'usb-emu:4MiB:faults=stall-in@0.05';
      x.luns[1].volume = 'serial-disk:/dev/ttyUSB0:921600';
      x.luns.push({ lun: 2, volume: 'usb:0781:5581:lun=1' });
      // A device's size is known only once it is opened: a lock region is not held to it here.
      x.luns[1].lockRegionSectors = 1 << 20;
    }));
    expect(c.luns.map((l) => l.volume.kind)).toEqual(['usb-emu', 'serial-disk', 'usb']);
    expect(c.luns[0]!.volume).toMatchObject({ bytes: 4 * 1024 * 1024, faults: { 'stall-in': 50_000 } });
    expect(c.luns[1]!.volume).toMatchObject({ path: '/dev/ttyUSB0', baud: 921_600 });
    expect(c.luns[2]!.volume).toMatchObject({ vendorId: 0x0781, productId: 0x5581, lun: 1, detachKernelDriver: false });
    expect(problem(config((x) => {
      x.luns[0].volume = 'usb-emu:4MiB';
      x.luns[0].lockRegionSectors = 16384;
    }))).toMatch(/^a\.json: luns\[0\]\.lockRegionSectors: 16384 sectors is larger than the volume \(8192 sectors\)$/);
  });

  it('reads a file, and refuses one that is missing, a directory, or too large, in one line', async () => {
    const good = join(scratch.dir(), 'good.json');
    await writeFile(good, config());
    expect((await loadControllerConfig(good)).name).toBe('A');
    await expect(loadControllerConfig(join(scratch.dir(), 'none.json'))).rejects.toThrow(/^config file .*none\.json could not be read: ENOENT/);
    const dir = join(scratch.dir(), 'd');
    await mkdir(dir);
    await expect(loadControllerConfig(dir)).rejects.toThrow(/is not a regular file$/);
    const big = join(scratch.dir(), 'big.json');
    await writeFile(big, ' '.repeat(CONFIG_FILE_BYTES_MAX + 1));
    await expect(loadControllerConfig(big)).rejects.toThrow(/at most 1048576 are read$/);
  });

  it('is documented field by field: docs/controller-process.md names every field the schema has', async () => {
    const doc = await readFile(new URL('../../../docs/controller-process.md', import.meta.url), 'utf8');
    const paths = configFieldPaths();
    expect(paths).toContain('luns[].mirror.mode');
    expect(paths).toContain('luns[].volume.members');
    expect(paths).toContain('limits.rollbackLogBytesMax');
    const missing = paths.filter((p) => !p.startsWith('limits.') && !doc.includes(`\`${p}\``));
    expect(missing).toEqual([]);
  });
});
