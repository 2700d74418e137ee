import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scratchDir } from '../../support/scratch-dir.ts';
import { mirrorlab } from '../../support/run-cli.ts';

/**
 * A controller config may name a USB link (`usb-link:VID:PID[:SERIAL]`); on this machine, which
 * has no USB bus, the device is absent: one line naming it, exit 2, nothing left behind. A bad
 * usb-link spec is a config error naming the field.
 */
const scratch = scratchDir('usb-link-cli');

async function config(link: string): Promise<{ path: string; image: string; socket: string }> {
  const dir = scratch.dir();
  const image = join(dir, 'u.img');
  const socket = join(dir, 'u.sock');
  const path = join(dir, 'usb.json');
  await writeFile(path, JSON.stringify({
    name: 'B', id: 2, luns: [{ lun: 0, volume: `file:${image}:1MiB`, replicaOf: 'A' }], peers: [{ name: 'A', link }], control: { path: socket },
  }));
  return { path, image, socket };
}

describe('mirrorlab controller with a usb-link peer', () => {
  it('exits 2 in one line when the USB link device is absent (no USB bus here), leaving nothing behind', async () => {
    const c = await config('usb-link:1209:4d4d');
    const r = await mirrorlab(['controller', '--config', c.path]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: ML_ERR_LINK_USB_NOT_FOUND: USB link device 1209:4d4d is not connected (no USB devices are present here); see mirrorlab devices\n');
    expect(existsSync(`${c.image}.lock`)).toBe(false);
    expect(existsSync(c.socket)).toBe(false);
  });

  it('exits 2 naming the field for a malformed usb-link spec', async () => {
    const c = await config('usb-link:1209');
    const r = await mirrorlab(['controller', '--config', c.path]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: ML_ERR_CONTROLLER_CONFIG: .*usb\.json: peers\[0\]\.link: .*usb-link takes a vendor and a product ID of 4 hex digits each.*\n$/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
