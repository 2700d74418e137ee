import type { StorageController } from '../../firmware/controller/storage-controller.ts';
import type { HostClock } from '../../host/clock/clock.ts';
import type { ControllerCrash } from '../faults/link-fault-plan.ts';
import type { HostWorkload } from '../workload/host-workload.ts';
import type { ServerWorkload } from '../workload/server-workload.ts';
import type { Topology } from './topology.ts';

/** The workloads of one mirror: the host writing through its source, the server locking on its target. */
export interface MirrorWorkloads {
  host: HostWorkload;
  server: ServerWorkload;
}

/** The controller a crash item's side names: the source of LUN 0 is A, its target B. */
export const crashedName = (c: ControllerCrash): 'A' | 'B' => (c.side === 'source' ? 'A' : 'B');

/**
 * The `crash=` and `power=` items of a run (docs/tag-tables.md, "Crash and power cut in the
 * simulator"), each a timer on the run's clock. At its time the side's controller crashes through
 * `Topology.crash` (which emits `controller.crash` and, for `power`, cuts the power of the
 * devices it built itself), and for `power` the side's volumes lose theirs at the same instant
 * (`cutVolumes`); the hosts writing through the controller lose what they had in flight and wait.
 * When it starts again, `downForMs` later, its hosts go on writing to the new start, and the
 * server workloads locking on it follow it there. `workloads` are in the order of `topo.pairs`.
 */
export class CrashSchedule {
  /** When the last crashed controller is started again (0: no crash). */
  readonly timedFaultsEndMs: number;
  crashes = 0;
  powerCuts = 0;
  private downNow = 0;

  constructor(
    private readonly items: readonly ControllerCrash[],
    private readonly topo: Topology,
    private readonly clock: HostClock,
    private readonly workloads: readonly MirrorWorkloads[],
    /** Cuts the power of a side's volumes (the emulator's volumes are the harness's: `VolumeSet.crashPowerCut`). */
    private readonly cutVolumes: (side: ControllerCrash['side']) => void = () => undefined,
  ) {
    this.timedFaultsEndMs = Math.max(0, ...items.map((c) => c.atMs + c.downForMs));
  }

  /** A controller is down (crashed and not yet started again): no stall is owed meanwhile (docs/simulator.md 1.1). */
  get down(): boolean {
    return this.downNow > 0;
  }

  start(): void {
    for (const c of this.items) this.clock.setTimeout(() => this.strike(c), Math.max(0, c.atMs - this.clock.now()));
  }

  private strike(c: ControllerCrash): void {
    const name = crashedName(c);
    this.crashes++;
    if (c.power) this.powerCuts++;
    this.downNow++;
    const pairs = this.topo.pairs;
    this.workloads.forEach((w, i) => {
      if (pairs[i]!.primary.name === name) w.host.crashed();
    });
    this.topo.crash(name, c.downForMs, (restarted: StorageController) => {
      this.downNow--;
      this.workloads.forEach((w, i) => {
        if (pairs[i]!.primary.name === name) w.host.restarted(restarted);
        if (pairs[i]!.secondary.name === name) w.server.restarted(restarted);
      });
    }, { power: c.power });
    if (c.power) this.cutVolumes(c.side);
  }
}
