import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { HandoverClock } from '../../../clock/handover.ts';
import { VirtualClock } from '../../../clock/virtual.ts';

/** Event-loop turns a setup may spend idle (waiting on nothing the clock knows of) before it is called stuck. */
const IDLE_TURNS_MAX = 1000;
/** Timers a setup may fire: opening a device takes a few dozen transfers, a few hundred with faults. */
const SETUP_EVENTS_MAX = 1_000_000;

/**
 * The clock of an emulated device and its driver while the volume is being opened: a private
 * virtual clock that {@link drive} runs, then, after {@link handOver}, the clock the volume lives
 * on. Opening takes transfers, and so time, but a volume is built before anyone runs the run's
 * clock (and must not move it: the fault plan's times count from the start of the run).
 */
export class SetupClock extends HandoverClock {
  private readonly setup: VirtualClock;

  constructor() {
    const setup = new VirtualClock();
    super(setup);
    this.setup = setup;
  }

  /** Runs the private clock until `work` settles and nothing is left pending on it; returns (or throws) `work`'s outcome. */
  async drive<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    work.then(() => (settled = true), () => (settled = true));
    for (let idle = 0; !settled; ) {
      const outcome = await this.setup.run({ until: () => settled, maxEvents: SETUP_EVENTS_MAX });
      if (outcome === 'events') throw new Error(`opening the emulated device took more than ${SETUP_EVENTS_MAX} timer events`);
      if (outcome === 'idle' && !settled) {
        if (++idle > IDLE_TURNS_MAX) throw new Error('opening the emulated device is stuck: nothing left to run, and it has not finished');
        await nextMacrotask();
      }
    }
    await this.setup.run({ maxEvents: SETUP_EVENTS_MAX });
    return work;
  }
}
