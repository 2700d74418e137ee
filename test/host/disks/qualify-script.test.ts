import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const root = new URL('../../../', import.meta.url).pathname;
const qualify = (args: string[]) => {
  const r = spawnSync(process.execPath, ['scripts/qualify.mjs', ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('npm run qualify -- SPEC --destroy-data', () => {
  it('refuses, before opening anything, without --destroy-data', () => {
    const r = qualify(['usb:0781:5581']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('error: qualifying usb:0781:5581 runs the BlockDevice contract suite on it, which overwrites sectors at both ends of the device and destroys what they held; pass --destroy-data to go ahead');
  });

  it('refuses a bad spec, an unknown flag, and a device that is not there, in one line each', () => {
    expect(qualify(['usb:07:1', '--destroy-data']).stderr).toMatch(/^error: bad volume spec "usb:07:1": vendor ID "07" is not 4 hex digits/);
    expect(qualify(['usb:0781:5581', '--destroy'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/^error: unknown flag --destroy; allowed: --destroy-data, --detach-kernel-driver/) });
    expect(qualify(['usb:1234:5678', '--destroy-data'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/^error: ML_ERR_USB_NOT_FOUND: USB device 1234:5678 is not connected/) });
  });

  it('runs the contract suite on the named device and passes on a good one (an emulated stick here)', () => {
    const r = qualify(['usb-emu:1MiB', '--destroy-data']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/qualify\.test\.ts/);
    expect(r.stdout).toMatch(/Tests\s+.*12 passed/);
  });
});
