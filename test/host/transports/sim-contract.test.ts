import { linkContract } from './link-contract.ts';
import { simPair } from './sim-pair.ts';

const can = { blackhole: true, reset: true, backpressure: true };
// Virtual time: 50 ms is 25 round trips of this link, and costs no wall time.
const settleMs = 50;

for (const connections of [1, 2, 3]) {
  linkContract(`simulated link, ${connections} connection${connections > 1 ? 's' : ''}, datagram heartbeats`, async () => simPair({ connections }), {
    connections, heartbeats: 'datagram', can, settleMs,
  });
}
linkContract('simulated link, inline heartbeats (a serial line)', async () => simPair({ connections: 1, heartbeats: 'inline' }), {
  connections: 1, heartbeats: 'inline', can, settleMs,
});
