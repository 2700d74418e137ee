import { linkContract } from './link-contract.ts';
import { tcpPair } from './live-pairs.ts';

/**
 * The link contract on real TCP sockets over loopback, with UDP heartbeats: both roles on each
 * side of the pair, 1 to 3 connections. A small send queue (64 KiB) so that backpressure shows
 * within a few megabytes (the kernel's socket buffers come on top of it).
 */
const can = {
  reset: true,
  backpressure: true,
  blackhole: 'a TCP link cannot black-hole its own path; the fault proxy between two links can (its own tests)',
};
// Real time: what loopback does promptly takes well under a millisecond; 250 ms leaves room for a loaded machine.
const settleMs = 250;

// Each end of the pair both listening and connecting, with 1 to 3 connections.
for (const [connections, listener] of [[2, 'a'], [1, 'b'], [3, 'b']] as const) {
  linkContract(`TCP on loopback, ${connections} connection${connections > 1 ? 's' : ''}, ${listener === 'a' ? 'a listens' : 'a connects'}`,
    () => tcpPair({ connections, listener, sendQueueBytesMax: 64 * 1024 }), { connections, heartbeats: 'datagram', can, settleMs });
}
