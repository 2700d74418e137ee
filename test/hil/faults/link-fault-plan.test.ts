import { describe, expect, it } from 'vitest';
import {
  FRAME_KINDS, LINK_FAULT_LIMITS, LINK_FAULT_SYNTAX, emptyLinkFaultPlan, formatLinkFaults, lateLinkFault, parseLinkFaults, timedFaultsEndMsMax,
} from '../../../hil/faults/link-fault-plan.ts';
import { UsageError } from '../../../hil/plan-error.ts';

const L = LINK_FAULT_LIMITS;

describe('link fault plans: the link-supervision items', () => {
  it('parse silent, oneway, hbloss, flap and reset, and format back to the same plan', () => {
    const text = 'silent=1s+3s,oneway=A>B@2s+500ms,oneway=B>A@10ms+1.5s,hbloss=0.2,flap=3@3s,flap=2@400ms@7s,reset=0.5%';
    const plan = parseLinkFaults(text);
    expect(plan).toEqual({
      ...emptyLinkFaultPlan(),
      silent: [{ atMs: 1000, forMs: 3000 }],
      oneway: [{ from: 'A', to: 'B', atMs: 2000, forMs: 500 }, { from: 'B', to: 'A', atMs: 10, forMs: 1500 }],
      hblossPerMillion: 200_000,
      flaps: [{ cycles: 3, periodMs: 3000, atMs: 0 }, { cycles: 2, periodMs: 400, atMs: 7000 }],
      resetPerMillion: 5_000,
    });
    expect(formatLinkFaults(plan)).toBe('silent=1000ms+3000ms,oneway=A>B@2000ms+500ms,oneway=B>A@10ms+1500ms,hbloss=0.2,flap=3@3000ms,flap=2@400ms@7000ms,reset=0.005');
    expect(parseLinkFaults(formatLinkFaults(plan))).toEqual(plan);
  });

  it('round-trip a plan holding every item, old and new', () => {
    const text = 'drop=0.02:LOCK,corrupt=1%,duplicate=0.001,reorder=0.05:ACK|NAK,delay=0.1@5ms:HEARTBEAT,partition=2,partition=100ms+50ms,bandwidth=10@200ms,'
      + 'silent=5ms+1s,oneway=B>A@1ms+2ms,hbloss=1,flap=10000@1ms,reset=0';
    const plan = parseLinkFaults(text);
    expect(parseLinkFaults(formatLinkFaults(plan))).toEqual(plan);
    expect(plan.delay[0]!.kinds).toEqual(['HEARTBEAT']);
  });

  it('let per-frame faults target HEARTBEAT frames, and list it among the kinds', () => {
    expect(FRAME_KINDS).toContain('HEARTBEAT');
    expect(new Set(FRAME_KINDS).size).toBe(FRAME_KINDS.length);
    expect(parseLinkFaults('drop=0.1:HEARTBEAT').drop).toEqual([{ perMillion: 100_000, kinds: ['HEARTBEAT'] }]);
    expect(LINK_FAULT_SYNTAX).toMatch(/HEARTBEAT/);
    for (const item of ['silent=AT+FOR', 'oneway=A>B@AT+FOR', 'hbloss=P', 'flap=N@PERIOD[@AT]', 'reset=P']) expect(LINK_FAULT_SYNTAX).toContain(item);
  });

  it.each([
    ['silent=5ms', /silent takes AT\+FOR \(e\.g\. silent=1s\+3s\), got "5ms"/],
    ['silent=5ms+0ms', /silent length in "silent=5ms\+0ms" is 0 ms; allowed above 0 to 3600000 ms/],
    ['silent=3600001ms+1ms', /silent start .* allowed from 0 to 3600000 ms/],
    ['silent=1s+soon', /not a duration/],
    ['silent=1s+2s,silent=1s+2s', /the silent cut "silent=1s\+2s" is given twice/],
    ['oneway=A-B@1s+1s', /oneway takes FROM>TO@AT\+FOR with controller names/],
    ['oneway=A>B', /oneway takes FROM>TO@AT\+FOR/],
    ['oneway=A>B@1s', /oneway takes AT\+FOR/],
    ['oneway=A>A@1s+1s', /names A at both ends; a one-way cut goes from one controller to the other/],
    ['oneway=A>B@1s+1s,oneway=A>B@1s+1s', /the one-way cut .* is given twice/],
    ['hbloss=1.5', /--faults hbloss: "1.5" is not a probability/],
    ['hbloss=0.1,hbloss=0.2', /hbloss is given twice \(one is "hbloss=0.2"\); give it once/],
    ['hbloss=0.1:HEARTBEAT', /hbloss takes no frame kinds .*drop=P:HEARTBEAT/],
    ['reset=0.1:WRITE', /reset takes no frame kinds/],
    ['reset=0.1,reset=0.1', /reset is given twice/],
    ['flap=3', /flap takes N@PERIOD or N@PERIOD@AT/],
    ['flap=x@1s', /flap takes N@PERIOD/],
    ['flap=0@1s', /flaps may have 1 to 10000 cycles in all; this plan would have 0/],
    ['flap=3@0.5ms', /the flap period must be at least 1 ms/],
    ['flap=10@400000s', /N x PERIOD at most 3600000 ms/],
    ['flap=3@1s@3600001ms', /flap start .* allowed from 0 to 3600000 ms/],
    ['flap=6000@1ms,flap=4001@1ms@1s', /10000 cycles in all; this plan would have 10001/],
    ['flap=3@1s,flap=3@1s', /the flap "flap=3@1s" is given twice/],
  ])('refuse %s with a message saying what is allowed', (text, message) => {
    expect(() => parseLinkFaults(text)).toThrow(UsageError);
    expect(() => parseLinkFaults(text)).toThrow(message);
  });

  it('accept the limits themselves and refuse one more: silent and one-way cuts, flaps', () => {
    const many = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i)).join(',');
    expect(parseLinkFaults(many(L.silentCutsMax, (i) => `silent=${i}ms+1ms`)).silent.length).toBe(L.silentCutsMax);
    expect(() => parseLinkFaults(many(L.silentCutsMax + 1, (i) => `silent=${i}ms+1ms`))).toThrow(/more than 1000 silent cuts/);
    expect(parseLinkFaults(many(L.onewayCutsMax, (i) => `oneway=A>B@${i}ms+1ms`)).oneway.length).toBe(L.onewayCutsMax);
    expect(() => parseLinkFaults(many(L.onewayCutsMax + 1, (i) => `oneway=A>B@${i}ms+1ms`))).toThrow(/more than 1000 one-way cuts/);
    expect(parseLinkFaults(many(L.flapsMax, (i) => `flap=1@1ms@${i}ms`)).flaps.length).toBe(L.flapsMax);
    expect(() => parseLinkFaults(many(L.flapsMax + 1, (i) => `flap=1@1ms@${i}ms`))).toThrow(/more than 16 flaps/);
    expect(parseLinkFaults(`flap=${L.flapCyclesMax}@360ms@${L.timedFaultMsMax}ms`).flaps[0]!.cycles).toBe(L.flapCyclesMax);
  });

  it('bound the end of the timed faults, the new items included', () => {
    expect(timedFaultsEndMsMax(parseLinkFaults('silent=1s+3s'))).toBe(4000);
    expect(timedFaultsEndMsMax(parseLinkFaults('oneway=B>A@2s+3s,silent=1s+1s'))).toBe(5000);
    // The last of three 2 s cycles from 1 s comes back up at 1 + 2 x 2 + 1 = 6 s.
    expect(timedFaultsEndMsMax(parseLinkFaults('flap=3@2s@1s'))).toBe(6000);
    expect(timedFaultsEndMsMax(parseLinkFaults('hbloss=0.5,reset=0.5'))).toBe(0);
  });

  it('name the first explicit timed item that ends after a fault phase', () => {
    const plan = parseLinkFaults('bandwidth=10@1s,silent=1s+3s,flap=3@2s@1s,partition=50');
    expect(lateLinkFault(plan, 10_000)).toBeNull();
    expect(lateLinkFault(plan, 5_000)).toBe('--faults: flap=3@2000ms@1000ms ends at 6000 ms');
    expect(lateLinkFault(plan, 3_000)).toBe('--faults: silent=1000ms+3000ms ends at 4000 ms');
    expect(lateLinkFault(parseLinkFaults('oneway=A>B@9s+1s'), 9_999)).toBe('--faults: oneway=A>B@9000ms+1000ms ends at 10000 ms');
  });
});
