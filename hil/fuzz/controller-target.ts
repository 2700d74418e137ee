import type { ControllerLimits } from '../../firmware/controller/config.ts';
import { DEFAULT_LIMITS } from '../../firmware/controller/config.ts';
import type { StorageController } from '../../firmware/controller/storage-controller.ts';
import { encodeFrame } from '../../firmware/protocol/encode.ts';
import { FrameFlag, FrameType, LockMode, NakReason, RejectAction, RejectReason, U64_FIELD_MAX, type Frame } from '../../firmware/protocol/frame.ts';
import { SeededRandom } from '../../host/random.ts';
import { concatBytes, pick, randomBytes } from './bytes.ts';
import { cutStream, drawChunking } from './chunking.ts';
import { probeController, framesDecodedBy } from './controller-probe.ts';
import { ControllerRig, HostWriter, RIG_LOCK_REGION_SECTORS, RIG_SECTOR_BYTES, RIG_VOLUME_SECTORS, type RigShape } from './controller-rig.ts';
import type { FuzzItem } from './damage.ts';
import { MirrorFrameGen } from './frames.ts';
import { writeRawFrame } from './raw-frame.ts';
import { describeError, emptyOutcome, type CaseOutcome, type FuzzFailure } from './outcome.ts';
import { between } from './values.ts';

export interface ControllerCaseOptions {
  /** Inputs in the burst (default: drawn from the case, 1,500 to 12,000). */
  frames?: number;
  /** Told about every round (what was sent where, and the link's state): a replay's detail. */
  log?: (line: string) => void;
}

/** Virtual time and scheduler events the controllers get to settle after the burst. */
const RECOVERY_MS_MAX = 120_000;
const RECOVERY_EVENTS_MAX = 5_000_000;
/** Scheduler events one burst round may take: a round that spins past it is a livelock. */
const ROUND_EVENTS_MAX = 500_000;
/** Clean writes per host after the burst. */
const CLEAN_WRITES = 40;

type Fail = (f: Omit<FuzzFailure, 'target' | 'seed' | 'caseIndex'>) => void;

function drawShape(rng: SeededRandom): RigShape {
  const connections = pick(rng, [1, 2, 3]);
  const heartbeats = connections === 1 && rng.chance(1, 2) ? 'inline' : 'datagram';
  const fast = rng.chance(1, 2);
  const payloadBytesMax = pick(rng, [16 * 1024, 64 * 1024, 1024 * 1024]);
  const limits: RigShape['limits'] = {
    payloadBytesMax,
    commitLogEntriesMax: pick(rng, [32, 256, 65_536]),
    commitLogBytesMax: pick(rng, [128 * 1024, 1024 * 1024, 32 * 1024 * 1024]),
    rollbackLogBytesMax: 8 * 1024 * 1024,
    controlQueueMax: pick(rng, [4, 64, 1024]),
    locksMax: pick(rng, [8, 64, 65_536]),
    resyncChunkBytes: 16 * 1024,
    ...(fast ? { heartbeatMs: 20, interruptionMs: 200, probationMs: 400 } : {}),
  };
  return { connections, heartbeats, mode: pick(rng, ['sync', 'speculative', 'async'] as const), policy: pick(rng, ['halt-resume', 'retransmit'] as const), limits };
}

/**
 * One case of the controller fuzz (docs/fuzzing.md 3): a live controller B mirroring with a good
 * peer A over a simulated link, both hosts writing, while thousands of generated and mutated frames
 * reach B as if from A, on every data connection and as heartbeat datagrams, split and coalesced
 * anywhere and interleaved with A's real traffic. After every round: nothing escaped B's frame
 * handling, no chart stopped on an error, every bounded structure of B within its bound. After the
 * burst, A restarts (a new session, as after any failure) and both hosts write cleanly: B must
 * settle (every write done, logs empty, locks released, link up) and both mirrors must end
 * identical, sector for sector.
 */
export async function runControllerCase(seed: number, caseIndex: number, opts: ControllerCaseOptions = {}): Promise<CaseOutcome> {
  const out = emptyOutcome();
  const rng = new SeededRandom(seed).fork(`controller/${caseIndex}`);
  const shape = drawShape(rng);
  const limits: ControllerLimits = { ...DEFAULT_LIMITS, ...shape.limits };
  const rig = new ControllerRig(rng.fork('rig'), shape);
  const fail: Fail = (f) => void out.failures.push({ target: 'controller', seed, caseIndex, ...f });
  out.notes.add(`links of ${shape.connections} connection${shape.connections === 1 ? '' : 's'}, heartbeats ${shape.heartbeats}`);
  rig.start();
  await rig.clock.run({ until: () => rig.linkUp(), untilMs: 30_000 });
  if (!rig.linkUp()) {
    fail({ invariant: 'recovery', message: `the link never came up before the burst (${describe(rig.b)})` });
    return out;
  }
  const frames = opts.frames ?? between(rng, 1500, 12_000);
  const injected = await burst(rng, rig, limits, frames, out, fail, opts.log);
  (out as { frames: number }).frames = injected;
  if (out.failures.length === 0) await recover(rng, rig, out, fail);
  return out;
}

/** The link supervisor's states in which B's data connections carry frames. */
const LINK_UP_STATES: ReadonlySet<string> = new Set(['up', 'suspect']);

/**
 * The hostile burst: rounds of a few inputs each, then a little virtual time. While B's link is
 * down (a forged session or version took it down, as it should) most rounds only let time pass:
 * frames on closed connections are dropped unread, so a few rounds still send them and the rest
 * wait for the link; a link still down after two interruption-and-probation spans stays down
 * for good (the forged session outranks the real peer's), and A restarts to end it, as in recovery.
 * Returns the inputs injected.
 */
async function burst(
  rng: SeededRandom, rig: ControllerRig, limits: ControllerLimits, frames: number, out: CaseOutcome, fail: Fail, log?: (line: string) => void,
): Promise<number> {
  const gen = new MirrorFrameGen(rng.fork('gen'), {
    payloadBytesMax: limits.payloadBytesMax, dataBytesMax: Math.min(limits.payloadBytesMax, 8192), sectorSize: RIG_SECTOR_BYTES, tame: true,
  });
  const writers = [
    new HostWriter(rig.clock, () => rig.a, 0, rng.fork('host-A'), { depth: 2, gapMs: between(rng, 1, 4) }),
    new HostWriter(rig.clock, () => rig.b, 1, rng.fork('host-B'), { depth: 2, gapMs: between(rng, 1, 4) }),
  ];
  for (const w of writers) w.start();
  const decodedBefore = framesDecodedBy(rig.b);
  const linkBefore = { ...rig.b.status()[0]!.link.counters };
  const restartAfterMs = 2 * (limits.interruptionMs + limits.probationMs);
  let downSince = -1;
  let injected = 0;
  let bytes = 0;
  while (injected < frames) {
    const now = rig.clock.now();
    const up = LINK_UP_STATES.has(rig.b.status()[0]!.link.state);
    downSince = up ? -1 : downSince < 0 ? now : downSince;
    if (!up && now - downSince > restartAfterMs) {
      rig.restartA(1, () => writers[0]!.restarted());
      out.notes.add('peer restarts during bursts');
      downSince = -1;
    }
    let first = injected;
    if (up || rng.chance(1, 10)) {
      // Only the peer's last few sessions: B remembers eight retired ones, and an older one is news to it.
      gen.hints = { ...rig.tap.hints(), session: rig.tap.peerSessions.values.slice(-3) };
      const round = drawRound(rng, rig, gen);
      deliver(rng, rig, round);
      for (const item of round.items) out.kinds.add(item.kind.split(':')[0]!);
      log?.(`t=${now.toFixed(3)} ms, inputs ${injected}-${injected + round.items.length - 1} on ${round.channel === 'datagram' ? 'the heartbeat channel' : `connection ${round.channel}`}: ` +
        `${round.items.map((i) => `${i.kind} ${hex(i.bytes)}`).join(' | ')}; B: ${describe(rig.b)}`);
      first = injected;
      injected += round.items.length;
      bytes += round.items.reduce((n, i) => n + i.bytes.length, 0);
      if (!up) out.notes.add('inputs sent while the link was down', round.items.length);
    }
    const stepMs = up ? pick(rng, [0, 0.05, 0.5, 2, 10, 40]) : 20;
    let outcome: string;
    try {
      outcome = await rig.clock.run({ untilMs: rig.clock.now() + stepMs, maxEvents: ROUND_EVENTS_MAX });
    } catch (e) {
      fail({ invariant: 'crash', frame: first, message: `a timer threw while the controllers ran: ${describeError(e)}` });
      break;
    }
    if (checkRound(rig, limits, out, fail, first, outcome)) break;
  }
  for (const w of writers) w.stop();
  (out as { bytes: number }).bytes = bytes;
  out.notes.add('frames the controller decoded (fuzzed and real)', framesDecodedBy(rig.b) - decodedBefore);
  out.notes.add('host writes refused during bursts', writers[0]!.failed + writers[1]!.failed);
  const link = rig.b.status()[0]!.link.counters;
  for (const k of ['downs', 'peerRestarts', 'incompatible', 'versionMismatches', 'frameErrors', 'staleFrames', 'unexpected'] as const) {
    out.notes.add(`B link ${k}`, link[k] - linkBefore[k]);
  }
  return injected;
}

/** After a round: a crash, a stopped chart, a bound passed, or a round that never let time move. True: stop. */
function checkRound(rig: ControllerRig, limits: ControllerLimits, out: CaseOutcome, fail: Fail, first: number, outcome: string): boolean {
  if (rig.crash !== null) {
    fail({ invariant: 'crash', frame: first, message: `an exception escaped ${rig.crash.where}: ${describeError(rig.crash.error)}` });
    return true;
  }
  for (const c of [rig.b, rig.a]) {
    if (c.failure !== null) {
      fail({ invariant: 'firmware-error', frame: first, message: `controller ${c.name}: a statechart stopped on an error: ${describeError(c.failure)}` });
      return true;
    }
  }
  const over = probeController(rig.b, limits, out.maxima).over;
  if (over.length > 0) {
    fail({ invariant: 'bound', frame: first, message: over.map((o) => `${o.name}: ${o.value} > ${o.bound}`).join('; ') });
    return true;
  }
  if (outcome === 'events') {
    fail({ invariant: 'liveness', frame: first, message: `the controllers ran ${ROUND_EVENTS_MAX} scheduler events without their clock reaching the round's end (${describe(rig.b)})` });
    return true;
  }
  return false;
}

interface Round {
  items: FuzzItem[];
  /** A data connection, or the heartbeat channel. */
  channel: number | 'datagram';
}

function drawRound(rng: SeededRandom, rig: ControllerRig, gen: MirrorFrameGen): Round {
  const datagram = rig.shape.heartbeats === 'datagram' && rng.chance(1, 6);
  const items: FuzzItem[] = [];
  for (let n = between(rng, 1, 24); items.length < n; ) items.push(...drawItems(rng, rig, gen, datagram));
  if (datagram) return { items, channel: 'datagram' };
  const conns = rig.b.status()[0]!.link.connections;
  const ready = conns.filter((c) => c.state === 'ready');
  const channel = ready.length > 0 && rng.chance(4, 5) ? pick(rng, ready).conn : rng.int(conns.length);
  return { items, channel };
}

/**
 * One or a few inputs: the generator's mix (valid frames of every type and flag combination,
 * broken ones, garbage), frames forged to fit the live streams (a LOCK, WRITE, UNLOCK run where
 * the peer's stream stands, responses about B's own stream), the peer's real frames replayed
 * (duplicated, reordered, from an old session) and B's own frames reflected back.
 */
function drawItems(rng: SeededRandom, rig: ControllerRig, gen: MirrorFrameGen, datagram: boolean): FuzzItem[] {
  const tap = rig.tap;
  const r = rng.int(100);
  const heartbeat = gen.catalog.types.find((t) => t.type === FrameType.Heartbeat)!;
  if (rng.chance(1, 1000)) return [linkAttack(rng, rig, gen)];
  if (datagram) return [r < 60 ? gen.valid(heartbeat) : gen.item()];
  if (r < 45) return [gen.item()];
  if (r < 65) return forgedRun(rng, rig);
  if (r < 77) return [forgedResponse(rng, rig)];
  if (r < 87 && tap.fromPeer.length > 0) return [replay(rng, pick(rng, tap.fromPeer), 'replay')];
  // B's own HELLOs and heartbeats name B's session: reflected, they are the own-session attack, kept rare above.
  const reflectable = tap.fromSelf.filter((b) => b[3] !== FrameType.Hello && b[3] !== FrameType.Heartbeat);
  if (r < 92 && reflectable.length > 0) return [replay(rng, pick(rng, reflectable), 'reflect')];
  const hello = gen.catalog.types.find((t) => t.type === FrameType.Hello)!;
  return [rng.chance(1, 2) ? gen.valid(hello) : gen.valid(heartbeat)];
}

/**
 * What takes a link down, on purpose and rarely: a frame of another protocol version, a HELLO
 * requiring a feature B lacks, and a heartbeat naming a session B has not seen from A (a "restart"
 * nobody can tell from a real one) or B's own.
 */
function linkAttack(rng: SeededRandom, rig: ControllerRig, gen: MirrorFrameGen): FuzzItem {
  const r = rng.int(4);
  if (r === 0) return { ...gen.foreignVersion(), kind: 'attack:version' };
  if (r === 1) {
    const hello = gen.catalog.types.find((t) => t.type === FrameType.Hello)!;
    const { spec } = gen.validSpec(hello);
    const p = spec.payload.slice();
    p[4] = p[4]! | 0x80; // features: bit 31
    p[8] = p[8]! | 0x80; // requiredFeatures: bit 31, a subset of features
    return { kind: 'attack:required-feature', bytes: writeRawFrame({ ...spec, payload: p }), expect: { frame: true } };
  }
  const session = r === 2 ? between(rng, 1, U64_FIELD_MAX) : rig.b.session;
  const frame: Frame = { type: FrameType.Heartbeat, lun: 0, seq: between(rng, 1, 1000), flags: 0, controllerId: 1, sessionId: session, confirmedSeq: 0, peerSession: rig.b.session };
  return item(r === 2 ? 'attack:new-session' : 'attack:own-session', frame);
}

function replay(rng: SeededRandom, bytes: Uint8Array, kind: string): FuzzItem {
  if (rng.chance(1, 4)) {
    const b = bytes.slice();
    b[rng.int(b.length)]! ^= 1 << rng.int(8);
    return { kind: `${kind}:damaged`, bytes: b, expect: null };
  }
  return { kind, bytes, expect: null };
}

function item(kind: string, frame: Frame): FuzzItem {
  return { kind, bytes: encodeFrame(frame), expect: { frame: true } };
}

/** A LOCK, one to three WRITEs under it and its UNLOCK, numbered where the peer's stream stands. */
function forgedRun(rng: SeededRandom, rig: ControllerRig): FuzzItem[] {
  const tap = rig.tap;
  let seq = Math.max(1, tap.peerNextSeq + between(rng, 0, 4) - 2);
  const lockId = rng.chance(1, 3) && tap.peerLocks.length > 0 ? pick(rng, tap.peerLocks) : between(rng, 1, 0xffff_ffff);
  const lun = pick(rng, [0, 0, 0, 1, 2]);
  const region = Math.floor(RIG_VOLUME_SECTORS / RIG_LOCK_REGION_SECTORS);
  const lba = rng.chance(9, 10) ? rng.int(region) * RIG_LOCK_REGION_SECTORS : pick(rng, [RIG_VOLUME_SECTORS, U64_FIELD_MAX - RIG_LOCK_REGION_SECTORS]);
  const flags = (rng.chance(1, 4) ? FrameFlag.GrantWanted : 0) | (rng.chance(1, 8) ? FrameFlag.Retransmit : 0);
  const mode = rng.chance(1, 5) ? LockMode.Read : LockMode.Write;
  const run: FuzzItem[] = [item('forged:lock', { type: FrameType.Lock, lun, seq: seq++, flags, lockId, lba, count: RIG_LOCK_REGION_SECTORS, mode })];
  for (let i = 0, n = between(rng, 1, 3); i < n; i++) {
    const sectors = between(rng, 1, 8);
    const at = lba + rng.int(RIG_LOCK_REGION_SECTORS - sectors + 1);
    const wflags = (rng.chance(1, 3) ? FrameFlag.Ordered : 0) | (rng.chance(1, 8) ? FrameFlag.Retransmit : 0);
    run.push(item('forged:write', { type: FrameType.Write, lun, seq: seq++, flags: wflags, lockId, lba: Math.min(at, U64_FIELD_MAX), tag: between(rng, 1, U64_FIELD_MAX), data: randomBytes(rng, sectors * RIG_SECTOR_BYTES) }));
  }
  if (rng.chance(4, 5)) run.push(item('forged:unlock', { type: FrameType.Unlock, lun, seq, flags: 0, lockId }));
  return rng.chance(1, 10) ? run.reverse() : run;
}

/** A response about B's own stream: an ACK, NAK, grant or refusal, for numbers and locks B has used. */
function forgedResponse(rng: SeededRandom, rig: ControllerRig): FuzzItem {
  const tap = rig.tap;
  const sent = tap.ownSeqSent;
  const seq = Math.max(1, pick(rng, [sent, sent - 1, sent + 1, sent - between(rng, 0, 50), 1, sent + 1000]));
  const lockId = tap.ownLocks.length > 0 && rng.chance(4, 5) ? pick(rng, tap.ownLocks) : between(rng, 1, 0xffff_ffff);
  switch (rng.int(4)) {
    case 0:
      return item('forged:ack', { type: FrameType.Ack, lun: 0, seq, flags: 0 });
    case 1:
      return item('forged:nak', { type: FrameType.Nak, lun: pick(rng, [0, 1]), seq, flags: 0, reason: pick(rng, Object.values(NakReason).filter((v): v is NakReason => typeof v === 'number')) });
    case 2:
      return item('forged:granted', { type: FrameType.LockGranted, lun: 1, seq, flags: 0, lockId });
    default:
      return item('forged:rejected', {
        type: FrameType.LockRejected, lun: 1, seq, flags: 0, lockId, reason: pick(rng, [RejectReason.LocalLock, RejectReason.MirrorLock, RejectReason.TableFull]),
        action: pick(rng, [RejectAction.Held, RejectAction.Discarded]),
      });
  }
}

/** The round's inputs to B: datagrams one by one, or one byte stream on a connection cut anyhow, now or spread out among the real traffic. */
function deliver(rng: SeededRandom, rig: ControllerRig, round: Round): void {
  if (round.channel === 'datagram') {
    for (const i of round.items) rig.endpoint.injectDatagram(i.bytes);
    return;
  }
  const conn = round.channel;
  const starts: number[] = [];
  let at = 0;
  for (const i of round.items) {
    starts.push(at);
    at += i.bytes.length;
  }
  const stream = concatBytes(round.items.map((i) => i.bytes));
  const chunks = cutStream(rng, stream, starts, drawChunking(rng, stream.length));
  if (rng.chance(1, 2)) {
    for (const c of chunks) rig.endpoint.inject(conn, c);
    return;
  }
  let delayMs = 0;
  for (const c of chunks) {
    delayMs += pick(rng, [0, 0.001, 0.01, 0.1]);
    rig.clock.setTimeout(() => rig.endpoint.inject(conn, c), delayMs);
  }
}

/**
 * After the burst: A restarts, both hosts write cleanly, and everything must settle and match.
 * The peer restarts because the burst may have said, with frames nobody can tell from the real
 * peer's, that the peer had restarted already (a HELLO or heartbeat naming a new session): the
 * controller then rightly takes the real peer's frames as stale, and only a real restart ends that.
 */
async function recover(rng: SeededRandom, rig: ControllerRig, out: CaseOutcome, fail: Fail): Promise<void> {
  const clean = [
    new HostWriter(rig.clock, () => rig.a, 0, rng.fork('clean-A'), { depth: 4, gapMs: 0.5, total: CLEAN_WRITES }),
    new HostWriter(rig.clock, () => rig.b, 1, rng.fork('clean-B'), { depth: 4, gapMs: 0.5, total: CLEAN_WRITES }),
  ];
  rig.restartA(pick(rng, [1, 50, 500]), () => clean[0]!.start());
  clean[1]!.start();
  const started = rig.clock.now();
  const done = (): boolean => clean.every((w) => w.finished) && rig.a.settled() && rig.b.settled();
  let outcome: string;
  try {
    outcome = await rig.clock.run({ until: done, untilMs: started + RECOVERY_MS_MAX, maxEvents: RECOVERY_EVENTS_MAX });
  } catch (e) {
    return fail({ invariant: 'crash', message: `recovery: a timer threw: ${describeError(e)}` });
  }
  if (rig.crash !== null) return fail({ invariant: 'crash', message: `recovery: an exception escaped ${rig.crash.where}: ${describeError(rig.crash.error)}` });
  for (const c of [rig.b, rig.a]) if (c.failure !== null) return fail({ invariant: 'firmware-error', message: `recovery: controller ${c.name}: ${describeError(c.failure)}` });
  if (outcome !== 'condition') {
    return fail({ invariant: 'recovery', message: `not settled ${Math.round(rig.clock.now() - started)} ms after the peer restarted (${outcome === 'events' ? 'event budget spent' : 'time is up'}): B ${describe(rig.b)}; A ${describe(rig.a)}; clean writes ${clean.map((w) => `${w.completed}/${CLEAN_WRITES}`).join(', ')}` });
  }
  const refused = clean.find((w) => w.failed > 0);
  if (refused) return fail({ invariant: 'recovery', message: `a clean write after the burst failed: ${describeError(refused.firstError)}` });
  const v = rig.volumes;
  for (const [name, source, copy] of [['LUN 0 (A to B)', v.a0, v.b0], ['LUN 1 (B to A)', v.b1, v.a1]] as const) {
    const lba = firstDifference(source.peek(0, RIG_VOLUME_SECTORS), copy.peek(0, RIG_VOLUME_SECTORS));
    if (lba >= 0) return fail({ invariant: 'recovery', message: `${name}: the copy differs from its source at sector ${lba} once everything settled` });
  }
  out.kinds.add('recoveries');
  out.notes.add('virtual ms to settle after the peer restarted (summed over cases)', Math.round(rig.clock.now() - started));
}

/** The first bytes of an input, for a replay's log. */
function hex(b: Uint8Array): string {
  const shown = Array.from(b.subarray(0, 56), (x) => x.toString(16).padStart(2, '0')).join('');
  return b.length > 56 ? `${shown}... (${b.length} bytes)` : shown;
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return Math.floor(i / RIG_SECTOR_BYTES);
  return -1;
}

/** One line about a controller's state, for a failure message. */
function describe(c: StorageController): string {
  const s = c.status()[0]!;
  const t = c.lockTable;
  return `link ${s.link.state}, source ${s.source?.state ?? '-'} (log ${s.source?.rollbackLog.entries ?? 0}), target ${s.target.state} (log ${s.target.commitLog.entries}, held early ${s.target.heldEarly}), ` +
    `mirrors ${s.mirrors.map((m) => m.state).join('/') || '-'}, locks ${t.locks}, rejections ${t.rejections}, host writes in flight ${c.hostWritesInFlight}`;
}
