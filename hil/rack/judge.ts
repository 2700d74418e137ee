import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { BLANK_BASELINE, checkLatest, firstDifference, type Baseline, type VolumeImage } from '../checker/content-checks.ts';
import { ConsistencyChecker } from '../checker/consistency-checker.ts';
import { describeViolation, type Violation } from '../checker/violation.ts';
import type { TraceEvent } from '../trace/events.ts';
import { MergeError, mergeTelemetry, type MergeProblem, type MergeResult, type TelemetrySource } from '../trace/merge.ts';
import { tieFramesAcrossRestarts } from './frame-ties.ts';
import { linearize } from './linearize.ts';
import type { UncertainWrite } from './rack-host.ts';

/**
 * One copy of a mirrored LUN as the judge gets it: an image file (the controller's own, or what the
 * rack read through its control socket into a file, docs/rack.md 7), or null with why it could not
 * be had.
 */
export interface JudgedCopy {
  node: string;
  image: string | null;
  /** Why there is no image (the copy could not be read). */
  unreadable?: string;
  /** The volume that holds the copy, as the rack names it (`file`, `usb-emu:8MiB`...). */
  volume?: string;
  /** How its bytes were had (default: the controller's own image file). */
  read?: ImageDigest['read'];
}

/** One mirrored LUN of the rack: who writes it, and the two copies that must end equal. */
export interface JudgedMirror {
  lun: number;
  primary: JudgedCopy & { id: number };
  secondary: JudgedCopy;
  /** What an untouched sector held before the run (default: zeros, the copies were built blank). */
  baseline?: Baseline;
}

export interface JudgeInput {
  /** Each controller's telemetry file (every incarnation appended), by node name. */
  telemetry: { node: string; path: string }[];
  mirrors: JudgedMirror[];
  sectorSize: number;
  /** The controller that was SIGKILLed, if any: the end of its killed incarnation's telemetry may be cut. */
  killed: string | null;
  /** Per node, the writes whose outcome its host never learned or that failed. */
  uncertain: Record<string, readonly UncertainWrite[]>;
  /**
   * Per node, the newest writes its host saw acknowledged. Those of the killed controller that its
   * telemetry does not hold (the kill cut the lines of its last turn) count as uncertain too: the
   * checker's history never heard of them.
   */
  recentAcked?: Record<string, readonly UncertainWrite[]>;
  violationsMax?: number;
}

export interface ImageDigest {
  node: string;
  lun: number;
  path: string;
  bytes: number;
  sha256: string;
  /** The volume that holds the copy, as the rack names it. */
  volume: string;
  /** How the judge had its bytes: the controller's image file after the stop, or read through its control socket before it. */
  read: 'image file' | 'control socket';
}

export interface Judgement {
  violations: Violation[];
  violationsDropped: number;
  images: ImageDigest[];
  telemetry: {
    events: number;
    /** Receives tied to their sends: the cross-process edges the order rests on. */
    edges: number;
    /** Merge problems the kill explains (lines cut or lost as the killed process died). */
    lostAtKill: number;
    /** Acknowledged writes whose `host.write` line died with the killed process (judged as uncertain). */
    ackedUnrecorded: number;
  };
}

/** Merge problems a SIGKILL explains: a cut last line, and receives of frames whose send line died with the process. */
const KILL_PROBLEMS = new Set<MergeProblem['kind']>(['unparseable', 'unmatched-receive']);

/**
 * The rack's verdict (docs/rack.md 2): the processes' telemetry merged into causal order
 * (`hil/trace/merge.ts`), fed to the simulator's consistency checker once per order that places
 * one primary's events as early as causality allows (see {@link linearize}: a cross-process
 * invariant is then judged by what the telemetry proves, not by wall-clock luck), then the disks:
 * per mirrored LUN the two images byte for byte, and every sector of each holding the last write
 * to it (self-describing data), sectors of uncertain writes excepted. The violations of every pass
 * are pooled, each once.
 */
export async function judgeRack(input: JudgeInput): Promise<Judgement> {
  const max = input.violationsMax ?? 100;
  const merged = mergeTelemetry(tieFramesAcrossRestarts(await readSources(input.telemetry.map((t) => t.path))));
  const found = new Map<string, Violation>();
  let dropped = 0;
  const add = (v: Violation): void => {
    const key = describeViolation(v);
    if (found.has(key)) return;
    if (found.size < max) found.set(key, v);
    else dropped++;
  };
  const lostAtKill = mergeProblems(merged, input, add);
  const primaries = [...new Set(input.mirrors.map((m) => m.primary.node))];
  let histories: ConsistencyChecker | null = null;
  for (const node of primaries) {
    const preferred = input.telemetry.findIndex((t) => t.node === node);
    const checker = feed(linearize(merged, preferred), max);
    checker.violations.forEach(add);
    dropped += checker.violationsDropped;
    histories ??= checker;
  }
  histories ??= new ConsistencyChecker(max);
  const images: ImageDigest[] = [];
  const unrecorded = ackedUnrecorded(merged, input);
  for (const m of input.mirrors) {
    const uncertain = new Set<number>();
    for (const w of [...input.uncertain[m.primary.node] ?? [], ...unrecorded.filter((u) => u.node === m.primary.node)]) {
      if (w.lun !== m.lun) continue;
      histories.history(m.primary.node, m.lun).markFailed(w.tag, w.lba, w.count);
      for (let lba = w.lba; lba < w.lba + w.count; lba++) uncertain.add(lba);
    }
    images.push(...await judgeImages(m, { sectorSize: input.sectorSize, uncertain, baseline: m.baseline ?? BLANK_BASELINE }, histories, add));
  }
  const telemetry = { events: merged.events.length, edges: merged.edges, lostAtKill, ackedUnrecorded: unrecorded.length };
  return { violations: [...found.values()], violationsDropped: dropped, images, telemetry };
}

/** The killed controller's acknowledged writes whose `host.write` is not in its telemetry. */
function ackedUnrecorded(merged: MergeResult, input: JudgeInput): (UncertainWrite & { node: string })[] {
  const node = input.killed;
  if (node === null) return [];
  const recorded = new Set<string>();
  for (const { event: e } of merged.events) {
    if (e.kind === 'host.write' && e.node === node) recorded.add(`${String(e.lun)}|${String(e.tag)}`);
  }
  return (input.recentAcked?.[node] ?? []).filter((w) => !recorded.has(`${w.lun}|${w.tag}`)).map((w) => ({ ...w, node }));
}

async function readSources(paths: readonly string[]): Promise<TelemetrySource[]> {
  const out: TelemetrySource[] = [];
  for (const path of paths) {
    try {
      out.push({ name: path, text: await readFile(path, 'utf8') });
    } catch (error) {
      throw new MergeError('ML_ERR_MERGE_INPUT', `telemetry file ${path} could not be read: ${(error as Error).message}`);
    }
  }
  return out;
}

/**
 * Merge problems are violations (`causal-order`) unless the kill explains them: the killed
 * controller's file may end its incarnation on a cut line, and its peer may have received frames
 * whose `frame.sent` lines died unwritten. Returns how many were forgiven.
 */
function mergeProblems(merged: MergeResult, input: JudgeInput, add: (v: Violation) => void): number {
  let forgiven = 0;
  const killedFile = input.telemetry.find((t) => t.node === input.killed)?.path;
  for (const p of merged.problems) {
    const explained = input.killed !== null && KILL_PROBLEMS.has(p.kind)
      && (p.kind === 'unparseable' ? p.source === killedFile : p.message.endsWith(`from ${input.killed}, and no source holds that send`));
    if (explained) {
      forgiven++;
      continue;
    }
    const node = input.telemetry.find((t) => t.path === p.source)?.node ?? '?';
    const message = `telemetry ${p.source} line ${p.line}: ${p.kind}: ${p.message}`;
    add({ invariant: 'causal-order', node, lun: 0, lba: 0, seq: p.line, tMs: 0, message });
  }
  return forgiven;
}

/** A fresh checker fed `events` in order; a checker that throws on what it is fed (hostile telemetry) is a violation, not a crash. */
function feed(events: readonly { event: unknown }[], max: number): ConsistencyChecker {
  const checker = new ConsistencyChecker(max);
  for (const m of events) {
    try {
      checker.emit(m.event as TraceEvent);
    } catch (error) {
      const e = m.event as { node?: string; t?: number; kind?: string };
      checker.report({
        invariant: 'causal-order', node: String(e.node ?? '?'), lun: 0, lba: 0, seq: 0, tMs: Number(e.t ?? 0),
        message: `the checker could not take ${String(e.kind)}: ${(error as Error).message}`,
      });
    }
  }
  return checker;
}

/**
 * The two copies of one mirror: equal bytes, and every written sector holding its last write.
 * Sectors of uncertain writes may hold either version; a write in flight when its controller was
 * killed may be on the disk though its `host.write` line died with the process, so those sectors
 * are not held to the baseline either. A copy that could not be read proves nothing: it is a
 * `mirror-identical` violation saying why, and the other copy is still checked.
 */
async function judgeImages(
  m: JudgedMirror, o: { sectorSize: number; uncertain: ReadonlySet<number>; baseline: Baseline }, checker: ConsistencyChecker, add: (v: Violation) => void,
): Promise<ImageDigest[]> {
  const { sectorSize } = o;
  const baseline: Baseline = o.uncertain.size === 0 ? o.baseline : { expected: (lba) => (o.uncertain.has(lba) ? undefined : o.baseline.expected(lba)) };
  const image = (bytes: Buffer): VolumeImage => ({ bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), sectorSize });
  const sides: { copy: JudgedCopy; bytes: Buffer | null }[] = [];
  for (const copy of [m.primary, m.secondary]) {
    if (copy.image === null) {
      add({ invariant: 'mirror-identical', node: copy.node, lun: m.lun, lba: 0, seq: 0, tMs: 0,
        message: `${copy.node}'s copy of LUN ${m.lun} could not be compared: ${copy.unreadable ?? 'it was not read'}` });
      sides.push({ copy, bytes: null });
    } else {
      sides.push({ copy, bytes: await readFile(copy.image) });
    }
  }
  const [a, b] = [sides[0]!.bytes, sides[1]!.bytes];
  const diff = a !== null && b !== null ? firstDifference(image(a), image(b)) : -1;
  if (diff >= 0) {
    add({ invariant: 'mirror-identical', node: m.secondary.node, lun: m.lun, lba: diff, seq: 0, tMs: 0,
      message: `${m.secondary.node}'s copy differs from ${m.primary.node}'s at LBA ${diff} after the pair drained` });
  }
  const history = checker.history(m.primary.node, m.lun);
  const digests: ImageDigest[] = [];
  for (const s of sides) {
    if (s.bytes === null) continue;
    const v = checkLatest(history, image(s.bytes), { node: s.copy.node, lun: m.lun, writer: m.primary.id, tMs: 0 }, baseline);
    if (v) add(v);
    digests.push({
      node: s.copy.node, lun: m.lun, path: s.copy.image!, bytes: s.bytes.length, sha256: createHash('sha256').update(s.bytes).digest('hex'),
      volume: s.copy.volume ?? 'file', read: s.copy.read ?? 'image file',
    });
  }
  return digests;
}
