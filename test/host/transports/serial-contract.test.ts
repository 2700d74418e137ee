import { linkContract } from './link-contract.ts';
import { mockLinkPair, ptyLinkPair } from './live-pairs.ts';
import { scratchDir } from '../../support/scratch-dir.ts';

/**
 * The link contract on serial links (heartbeats inline): over a socat PTY pair (a real tty path
 * through serialport's native binding) and over serialport's mock binding (the link's own logic,
 * fast, no tty).
 */
const can = {
  backpressure: true,
  reset: 'a serial line has no reset of its own to trigger; a port that disappears is tested in serial-link.test.ts',
  blackhole: 'a serial link cannot black-hole its own line; the fault proxy\'s PTY relay can (its own tests)',
};
const scratch = scratchDir('serial-contract');
let n = 0;

linkContract('serial over a socat PTY pair', () => ptyLinkPair(scratch.dir(), `pty${n++}`, { sendQueueBytesMax: 16 * 1024 }),
  { connections: 1, heartbeats: 'inline', can, settleMs: 300 });
linkContract('serial over serialport\'s mock binding', () => mockLinkPair({ sendQueueBytesMax: 16 * 1024 }),
  { connections: 1, heartbeats: 'inline', can, settleMs: 100 });
