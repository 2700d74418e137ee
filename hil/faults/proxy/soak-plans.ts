import type { Random } from '../../../firmware/ports/random.ts';
import { SeededRandom } from '../../../host/random.ts';
import { formatLinkFaults, parseLinkFaults, type LinkFaultPlan } from '../link-fault-plan.ts';

/**
 * The fault plan the proxy soak draws for a seed (docs/fault-proxy.md 8): per-frame faults of 0 to
 * 2% each (reorder and reset on TCP only, where they exist), delay up to 20 ms, heartbeat loss up to
 * 30%, and one link-wide failure: a silent cut of 0.3 to 2.5 s (on both sides of the 1 s
 * interruption timeout), a one-way cut, or a flap of 2-3 cycles, starting 0.5 to 1.5 s in.
 */
export function drawSoakPlan(seed: number, link: 'tcp' | 'serial'): LinkFaultPlan {
  const r = new SeededRandom(seed).fork('proxy-soak-plan');
  const pct = (max: number): string => (r.int(max * 10 + 1) / 1000).toFixed(3);
  const items = [`drop=${pct(2)}`, `corrupt=${pct(2)}`, `delay=${pct(5)}@${1 + r.int(20)}ms`, `hbloss=${pct(30)}`];
  if (link === 'tcp') items.push(`duplicate=${pct(2)}`, `reorder=${pct(2)}`, `reset=${(r.int(4) / 1000).toFixed(3)}`);
  items.push(linkWide(r));
  return parseLinkFaults(items.join(','));
}

function linkWide(r: Random): string {
  const at = 500 + r.int(1001);
  switch (r.int(3)) {
    case 0: return `silent=${at}ms+${300 + r.int(2201)}ms`;
    case 1: return `oneway=${r.int(2) === 0 ? 'A>B' : 'B>A'}@${at}ms+${300 + r.int(2201)}ms`;
    default: return `flap=${2 + r.int(2)}@${600 + r.int(600)}ms@${at}ms`;
  }
}

export { formatLinkFaults };
