import fc from 'fast-check';
import { expect } from 'vitest';
import { VirtualClock } from '../../../host/clock/virtual.ts';
import { FaultyDisk } from '../../../host/disks/faulty.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import type { Raid5 } from '../../../host/disks/raid/raid5.ts';
import type { RaidArray, RaidLevel } from '../../../host/disks/raid/types.ts';
import { SeededRandom } from '../../../host/random.ts';
import { DiskModel } from './disk-model.ts';
import { pattern, runUntilSettled } from './helpers.ts';
import { makeArray } from './raid-fixtures.ts';

export const SS = 512;
const CHUNK_SECTORS = 4;
const MEMBER_SECTORS = 48;
const MEMBERS: Record<RaidLevel, number> = { raid0: 2, raid1: 3, raid5: 4, raid10: 4 };

export interface WriteSpec { lba: number; sectors: number; seed: number; full: boolean }
export type Command =
  | { kind: 'write'; write: WriteSpec }
  | { kind: 'read'; lba: number; sectors: number }
  | { kind: 'burst'; writes: WriteSpec[] }
  | { kind: 'flush' }
  | { kind: 'fail'; member: number }
  | { kind: 'rebuild'; writes: WriteSpec[]; cutAfterSteps: number }
  | { kind: 'cut'; inflight: WriteSpec[]; afterUs: number }
  | { kind: 'check' }
  | { kind: 'bad'; member: number; memberLba: number };

const writeArb = fc.record({ lba: fc.nat(10_000), sectors: fc.integer({ min: 1, max: 12 }), seed: fc.nat(), full: fc.boolean() });
const writesArb = fc.array(writeArb, { minLength: 1, maxLength: 4 });

/** Commands, weighted towards I/O; `rebuild` with `cutAfterSteps` > 0 cuts the power mid-rebuild. */
export const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: writeArb.map((write) => ({ kind: 'write' as const, write })) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('read' as const), lba: fc.nat(10_000), sectors: fc.integer({ min: 1, max: 16 }) }) },
  { weight: 2, arbitrary: writesArb.map((writes) => ({ kind: 'burst' as const, writes })) },
  { weight: 2, arbitrary: fc.constant({ kind: 'flush' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('fail' as const), member: fc.nat(3) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('rebuild' as const), writes: writesArb, cutAfterSteps: fc.integer({ min: 0, max: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('cut' as const), inflight: fc.array(writeArb, { maxLength: 3 }), afterUs: fc.nat(400) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'check' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bad' as const), member: fc.nat(3), memberLba: fc.nat(MEMBER_SECTORS - 1) }) },
);

/** Makes member disks; `lying` swaps in a disk that corrupts what it is given (to prove the test can fail). */
export type DiskMaker = (name: string, clock: VirtualClock, random: SeededRandom) => FaultyDisk;

export const honestDisk: DiskMaker = (name, clock, random) => new FaultyDisk({
  clock,
  inner: new MemoryDisk({
    name, sectorCount: MEMBER_SECTORS, clock, random: random.fork(name),
    service: { fixedMs: 0.05 + (random.fork(`${name}:t`).int(4) * 0.05), perByteMs: 0.00001 },
    writeCacheBytesMax: 8 * SS, unflushedLoss: { numerator: 1, denominator: 2 },
  }),
});

/** Runs one command sequence against one array and its model. */
export class ArrayHarness {
  readonly clock = new VirtualClock();
  readonly model: DiskModel;
  array: RaidArray;
  private readonly random: SeededRandom;
  private spares = 0;

  constructor(readonly level: RaidLevel, seed: number, private readonly makeDisk: DiskMaker = honestDisk) {
    this.random = new SeededRandom(seed);
    const members = Array.from({ length: MEMBERS[level] }, (_, i) => makeDisk(`m${i}`, this.clock, this.random));
    this.array = makeArray(level, 'vol', members, this.clock, CHUNK_SECTORS * SS);
    this.model = new DiskModel(SS, this.array.sectorCount);
  }

  async apply(cmd: Command): Promise<void> {
    switch (cmd.kind) {
      case 'write': return this.writes([cmd.write]);
      case 'burst': return this.writes(cmd.writes);
      case 'read': return this.read(cmd.lba, cmd.sectors);
      case 'flush':
        await this.run(this.array.flush());
        return this.model.flush();
      case 'fail': return this.fail(cmd.member);
      case 'rebuild': return this.rebuild(cmd.writes, cmd.cutAfterSteps);
      case 'cut': return this.cut(cmd.inflight, cmd.afterUs / 1000);
      case 'check': return this.check();
      case 'bad': return this.bad(cmd.member, cmd.memberLba);
    }
  }

  /** Reads everything back and checks redundancy: the end of every run. */
  async finish(): Promise<void> {
    await this.read(0, this.array.sectorCount);
    await this.check();
  }

  private run<T>(p: Promise<T>): Promise<T> {
    return runUntilSettled(this.clock, p);
  }

  private shape(w: WriteSpec): { lba: number; data: Uint8Array } {
    const width = this.level === 'raid5' ? 3 * CHUNK_SECTORS : this.level === 'raid1' ? 8 : 2 * CHUNK_SECTORS;
    const sectors = w.full ? width : w.sectors;
    let lba = w.lba % (this.array.sectorCount - sectors + 1);
    if (w.full) lba -= lba % width;
    return { lba, data: pattern(w.seed, sectors * SS) };
  }

  private async writes(specs: WriteSpec[]): Promise<void> {
    const shaped = specs.map((w) => this.shape(w));
    await this.run(Promise.all(shaped.map(({ lba, data }) => this.array.write(lba, data))));
    for (const { lba, data } of shaped) this.model.write(lba, data); // overlapping writes land in issue order
  }

  private async read(lba: number, sectors: number): Promise<void> {
    const count = Math.min(sectors, this.array.sectorCount);
    const at = lba % (this.array.sectorCount - count + 1);
    this.model.observe(at, await this.run(this.array.read(at, count)), `${this.level} read [${at}, +${count})`);
  }

  private member(i: number): FaultyDisk {
    return this.array.member(i) as FaultyDisk;
  }

  /** Members out of sync or dead (a dead one the array has not noticed yet included). */
  private missing(): Set<number> {
    const out = new Set<number>();
    for (let i = 0; i < this.array.memberCount; i++) {
      if (this.array.memberState(i) !== 'active' || this.member(i).failed) out.add(i);
    }
    return out;
  }

  private tolerates(member: number): boolean {
    const missing = this.missing();
    if (missing.has(member)) return false;
    switch (this.level) {
      case 'raid0': return false;
      case 'raid1': return missing.size + 1 <= this.array.memberCount - 1;
      case 'raid5': return missing.size === 0;
      case 'raid10': return !missing.has(member ^ 1);
    }
  }

  private fail(member: number): void {
    if (this.tolerates(member % this.array.memberCount)) this.member(member % this.array.memberCount).fail();
  }

  private async rebuild(specs: WriteSpec[], cutAfterSteps: number): Promise<void> {
    const index = [...this.missing()][0];
    if (index === undefined) return this.writes(specs);
    if (this.array.memberState(index) === 'active') this.array.failMember(index);
    const spare = this.makeDisk(`spare${this.spares++}`, this.clock, this.random);
    let steps = 0;
    const rebuild = this.array.rebuild(index, spare, { stepSectors: 8, onProgress: () => steps++ });
    const shaped = specs.map((w) => this.shape(w));
    const writes = shaped.map(({ lba, data }) => this.array.write(lba, data));
    if (cutAfterSteps === 0) {
      await this.run(Promise.all([rebuild, ...writes]));
      for (const { lba, data } of shaped) this.model.write(lba, data);
      return;
    }
    await this.clock.run({ until: () => steps >= cutAfterSteps });
    for (const { lba, data } of shaped) this.model.write(lba, data); // in flight or done: either way unflushed
    await this.powerCut([rebuild, ...writes]);
    if (this.array.memberState(index) === 'rebuilding') await this.run(this.array.rebuild(index, null, { stepSectors: 8 }));
  }

  private async cut(inflight: WriteSpec[], afterMs: number): Promise<void> {
    const shaped = inflight.map((w) => this.shape(w));
    const ops = shaped.map(({ lba, data }) => this.array.write(lba, data));
    await this.clock.run({ untilMs: this.clock.now() + afterMs });
    for (const { lba, data } of shaped) this.model.write(lba, data);
    await this.powerCut(ops);
  }

  /**
   * Cuts the power, reassembles the array from its superblock, resyncs (md's repair after an
   * unclean shutdown) and reads everything back: each sector must hold a value it may hold.
   */
  private async powerCut(inflight: Promise<unknown>[]): Promise<void> {
    const garbage = this.writeHole();
    this.array.powerCut();
    this.model.powerCut(garbage);
    await this.run(Promise.allSettled(inflight));
    const members = Array.from({ length: this.array.memberCount }, (_, i) => this.array.member(i));
    this.array = makeArray(this.level, 'vol', members, this.clock, CHUNK_SECTORS * SS, this.array.superblock());
    if (this.level !== 'raid0' && this.array.state !== 'failed') await this.run(this.array.check({ repair: true }));
    await this.read(0, this.array.sectorCount);
  }

  /**
   * The RAID-5 write hole: in a stripe row touched by an unflushed write, a member that is
   * missing at the cut will be rebuilt from parity that may not match the surviving data.
   */
  private writeHole(): number[] {
    if (this.level !== 'raid5') return [];
    const raid5 = this.array as unknown as Raid5;
    const n = this.array.memberCount;
    const out: number[] = [];
    for (const lba of this.model.unflushed()) {
      const { stripe, row, parityMember } = raid5.locate(lba);
      for (const m of this.missing()) {
        if (m === parityMember) continue;
        const dataIndex = (m - parityMember - 1 + n) % n;
        out.push((stripe * (n - 1) + dataIndex) * CHUNK_SECTORS + row);
      }
    }
    return out;
  }

  private async check(): Promise<void> {
    if (this.level === 'raid0' || this.array.state === 'failed') return;
    const result = await this.run(this.array.check());
    expect(result.mismatches, `${this.level} check after a consistent history`).toBe(0);
  }

  private async bad(member: number, memberLba: number): Promise<void> {
    if (this.level === 'raid0' || this.array.state !== 'optimal' || this.missing().size > 0) return;
    const disk = this.member(member % this.array.memberCount);
    disk.apply({ badSectors: [memberLba] });
    await this.read(0, this.array.sectorCount); // bad data sectors are repaired from redundancy here,
    await this.run(this.array.check({ repair: true })); // the rest (parity, unread mirrors) here
    expect(disk.plan().badSectors, 'bad sector still there after read repair and check').toBeUndefined();
  }
}

/** The property: every command sequence keeps the array equal to the model. */
export function arrayMatchesModel(level: RaidLevel, makeDisk: DiskMaker = honestDisk) {
  return fc.asyncProperty(fc.nat(2 ** 31), fc.array(commandArb, { minLength: 1, maxLength: 30 }), async (seed, commands) => {
    const harness = new ArrayHarness(level, seed, makeDisk);
    for (const cmd of commands) await harness.apply(cmd);
    await harness.finish();
  });
}
