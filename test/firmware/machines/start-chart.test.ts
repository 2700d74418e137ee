import { describe, expect, it } from 'vitest';
import { sourceChannelMachine, type SourceChannelControl } from '../../../firmware/machines/source-channel.machine.ts';
import { startChart, stateName } from '../../../firmware/machines/start-chart.ts';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { RecordingTelemetry } from '../../support/harness.ts';

describe('startChart', () => {
  it('publishes every state change with the event that caused it, in virtual time', async () => {
    const clock = new VirtualClock();
    const tel = new RecordingTelemetry();
    const ctl = {
      haltProbeMs: 5, lockRetryDelayMs: 1, grantProbeMs: 100, headSeq: () => 1, sentThrough: () => 3,
      hasSentUnconfirmed: () => false, isBusy: () => true, awaitsGrant: () => false,
    } as unknown as SourceChannelControl;
    const calls: string[] = [];
    const stub = new Proxy(ctl, { get: (t, k) => (k in t ? t[k as keyof typeof t] : () => calls.push(String(k))) });
    const chart = startChart(sourceChannelMachine, { ctl: stub }, { clock, telemetry: tel, node: 'A', machine: 'source:A->B', onError: (e) => { throw e; } });
    chart.send({ type: 'link.up' });
    chart.send({ type: 'target.lock.rejected', seq: 3, lockId: 1, discarded: false });
    await clock.advance(5); // haltProbe fires once
    // Re-entering `halted` on the probe is not a change of state, so it is not published again.
    expect(tel.states('source:A->B')).toEqual(['linkDown', 'speculativeSent', 'halted']);
    expect(tel.of('state').at(-1)).toMatchObject({ t: 0, to: 'halted', event: 'target.lock.rejected' });
    expect(calls).toContain('probe');
    expect(chart.events()).toBe(3);
    chart.stop();
  });

  it('hands an action that throws to the error observer instead of killing the process', async () => {
    const clock = new VirtualClock();
    const errors: unknown[] = [];
    const ctl = new Proxy({ haltProbeMs: 5, lockRetryDelayMs: 1, grantProbeMs: 100 } as unknown as SourceChannelControl, {
      get: (t, k) => (k in t ? t[k as keyof typeof t] : () => { throw new Error(`broken ${String(k)}`); }),
    });
    const chart = startChart(sourceChannelMachine, { ctl }, { clock, telemetry: new RecordingTelemetry(), node: 'A', machine: 'm', onError: (e) => errors.push(e) });
    expect(errors.length).toBe(1); // the entry action of linkDown threw at start
    expect(String(errors[0])).toMatch(/broken setGate/);
    chart.send({ type: 'link.up' }); // a stopped actor ignores events: no throw
    await clock.run();
  });

  it('names nested states with dots', () => {
    expect(stateName('idle')).toBe('idle');
    expect(stateName({ rollback: 'backoff' })).toBe('rollback.backoff');
    expect(stateName({ a: { b: 'c' } })).toBe('a.b.c');
  });
});
