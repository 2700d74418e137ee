import { describe, expect, it } from 'vitest';
import {
  CRASH_DOWN_MS_DEFAULT, LINK_FAULT_LIMITS, LINK_FAULT_SYNTAX, emptyLinkFaultPlan, formatLinkFaults, lateLinkFault, parseLinkFaults, refuseCrashes, timedFaultsEndMsMax,
} from '../../../hil/faults/link-fault-plan.ts';
import { parseRackFaults } from '../../../hil/rack/options.ts';
import { UsageError } from '../../../hil/plan-error.ts';

describe('fault items crash= and power= (docs/tag-tables.md, "Crash and power cut in the simulator")', () => {
  it('parse a side, a time and a down time (default 100 ms), and format back to the same plan', () => {
    const plan = parseLinkFaults('crash=target@40ms+200ms,power=source@1s,crash=source@2s+1.5s,drop=0.01');
    expect(plan).toEqual({
      ...emptyLinkFaultPlan(),
      drop: [{ perMillion: 10_000, kinds: [] }],
      crashes: [
        { side: 'target', atMs: 40, downForMs: 200, power: false },
        { side: 'source', atMs: 1000, downForMs: CRASH_DOWN_MS_DEFAULT, power: true },
        { side: 'source', atMs: 2000, downForMs: 1500, power: false },
      ],
    });
    expect(CRASH_DOWN_MS_DEFAULT).toBe(100);
    expect(formatLinkFaults(plan)).toBe('drop=0.01,crash=target@40ms+200ms,power=source@1000ms+100ms,crash=source@2000ms+1500ms');
    expect(parseLinkFaults(formatLinkFaults(plan))).toEqual(plan);
    expect(LINK_FAULT_SYNTAX).toContain('crash=SIDE@AT[+DOWNFOR]');
    expect(LINK_FAULT_SYNTAX).toContain('power=SIDE@AT[+DOWNFOR]');
  });

  it('count a crash as a timed fault that ends when the controller is started again', () => {
    const plan = parseLinkFaults('crash=target@40ms+200ms,partition=10ms+5ms');
    expect(timedFaultsEndMsMax(plan)).toBe(240);
    expect(lateLinkFault(plan, 239)).toBe('--faults: crash=target@40ms+200ms ends at 240 ms');
    expect(lateLinkFault(plan, 240)).toBeNull();
  });

  it('let the two sides be down at once, but never one side twice at once', () => {
    expect(parseLinkFaults('crash=source@10ms+50ms,power=target@20ms+50ms').crashes).toHaveLength(2);
    // Back to back is fine: the second strikes the start that came back.
    expect(parseLinkFaults('crash=source@10ms+50ms,crash=source@60ms').crashes).toHaveLength(2);
  });

  it.each([
    ['crash=source', /crash takes SIDE@AT or SIDE@AT\+DOWNFOR, SIDE source or target \(crash=target@40ms\+200ms\), got "source"/],
    ['crash=A@10ms', /"crash=A@10ms" names the side "A"; allowed source \(controller A\) or target \(controller B\)/],
    ['power=middle@10ms+1ms', /names the side "middle"; allowed source/],
    ['crash=source@soon', /--faults crash time: "soon" is not a duration/],
    ['power=target@1s+0ms', /power down time in "power=target@1s\+0ms" is 0 ms; allowed above 0 to 3600000 ms/],
    ['crash=target@3600001ms', /crash time in .* is 3600001 ms; allowed from 0 to 3600000 ms/],
    ['crash=target@1s+3600001ms', /crash down time .* allowed above 0 to 3600000 ms/],
    ['crash=source@10ms+100ms,power=source@50ms', /"power=source@50ms" strikes the source while it is down after crash=source@10ms\+100ms \(from 10 to 110 ms\)/],
    ['crash=target', /crash takes SIDE@AT/],
    ['crash=', /"crash=" has no value/],
  ])('refuse %s, saying what is allowed', (text, message) => {
    expect(() => parseLinkFaults(text)).toThrow(UsageError);
    expect(() => parseLinkFaults(text)).toThrow(message);
  });

  it(`refuse more than ${LINK_FAULT_LIMITS.crashesMax} crashes`, () => {
    const items = Array.from({ length: LINK_FAULT_LIMITS.crashesMax + 1 }, (_, i) => `crash=source@${i * 10}ms+5ms`);
    expect(() => parseLinkFaults(items.slice(0, -1).join(','))).not.toThrow();
    expect(() => parseLinkFaults(items.join(','))).toThrow(`more than ${LINK_FAULT_LIMITS.crashesMax} crashes and power cuts`);
  });

  it('are refused where only a link can be struck: the fault proxy and the rack', () => {
    expect(() => refuseCrashes(parseLinkFaults('drop=0.1,power=target@1s'), 'the fault proxy'))
      .toThrow(/power=target@1000ms\+100ms: crash and power items strike the simulator's controllers \(emulate, campaign\); the fault proxy strikes only the link/);
    expect(() => parseRackFaults('crash=source@1s')).toThrow(/the rack strikes only the link \(its --kill stops a controller process\)/);
    expect(parseRackFaults('drop=0.1').crashes).toEqual([]);
  });
});
