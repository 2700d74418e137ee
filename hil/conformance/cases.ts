import { setTimeout as sleep } from 'node:timers/promises';
import { crc32cRange } from '../../firmware/protocol/crc.ts';
import { encodeFrame, FrameType, HEADER_BYTES, NakReason, PROTOCOL_VERSION, RejectAction, type LockRejectedFrame } from '../../firmware/protocol/index.ts';
import { writeData } from '../../host/workload/data.ts';
import { CaseFailure, NAK_NAMES, adoptedAt, checkHello, checkReadBack, checkStream, fail, hellos, naks, type Written } from './checks.ts';
import { PASS, type FaultStage, type FrameFate, type OutgoingFrame, type ReceivedRecord } from './fault-stage.ts';
import { SECTOR_BYTES, SourceSide, type SourceSettings } from './source-side.ts';

/** What a case may ask of the target beyond the protocol: its control socket (docs/conformance.md 5). */
export interface TargetControl {
  read(lun: number, lba: number, count: number): Promise<Uint8Array>;
  /** Holds a local lock on the region for `holdMs` from its grant; resolves once granted. */
  holdLock(lun: number, lba: number, count: number, holdMs: number): Promise<void>;
}

export interface CaseContext {
  settings: SourceSettings;
  control: TargetControl | null;
  /** The first LBA of the case's own area (AREA_SECTORS long), and the first of its tags. */
  area: number;
  tagBase: number;
}

export type CaseOutcome = { verdict: 'pass' | 'skip'; reason: string };

/** Which cases need the target's control socket, and for what. */
export type ControlNeed = 'none' | 'read-back' | 'required';

export interface ConformanceCase {
  name: string;
  /** What a pass shows about the target, one sentence (the docs and `--json` carry it). */
  proves: string;
  control: ControlNeed;
  /** The case is cut off after this long and fails (ms, wall clock). */
  timeoutMs: number;
  run(ctx: CaseContext): Promise<CaseOutcome>;
}

/** Sectors each case writes within: cases never share a sector, nor (at 64-sector lock regions) a lock region. */
export const AREA_SECTORS = 64;
export const LOCK_REGION_SECTORS = 64;
/** How long a source gets to come up (HELLOs, heartbeats, the resynchronisation a new session starts). */
const READY_MS = 15_000;
/** A write's confirmation, after which it counts as lost. */
const CONFIRM_MS = 15_000;
/** The local lock the refused-lock cases take at the target: held this long at first, four times longer at each retry. */
const LOCK_HOLD_MS = 500;
const LOCK_ATTEMPTS = 3;
/** How long the hello case waits for a HELLO on every data connection once the link is up. */
const HELLO_WAIT_MS = 5_000;

/** A source for the case: started, up and resynchronised, stopped whatever happens. */
async function withSource<T>(ctx: CaseContext, body: (src: SourceSide) => Promise<T>): Promise<T> {
  const src = await SourceSide.start(ctx.settings);
  try {
    if (!(await src.waitReady(READY_MS, () => checkStream(src.stage, src.session) !== null)) || checkStream(src.stage, src.session) !== null) {
      // A target that confirms what it should not stalls the resynchronisation: that is the reason, not the wait.
      const problem = checkStream(src.stage, src.session);
      if (problem) fail(problem);
      const heard = src.stage.received.length;
      const noHello = hellos(src.stage).length === 0 ? ', no HELLO' : '';
      fail(`the link did not come up within ${READY_MS} ms (link ${src.linkState}; ${heard} frames heard from the target${noHello})`);
    }
    return await body(src);
  } finally {
    await src.stop();
  }
}

/** Writes `count` sectors of self-describing data, recorded for the read-back. */
function data(ctx: CaseContext, k: number, lba: number, sectors: number): Written {
  const tag = ctx.tagBase + k;
  return { lba, tag, data: writeData(ctx.settings.id, ctx.settings.lun, tag, lba, sectors, SECTOR_BYTES) };
}

async function confirmAll(src: SourceSide, writes: readonly Written[], what = 'the writes'): Promise<void> {
  const done = Promise.all(writes.map((w) => src.write(w.lba, w.data, w.tag)));
  const timer = sleep(CONFIRM_MS).then(() => 'timeout' as const);
  const result = await Promise.race([done.then(() => 'ok' as const), timer]);
  if (result === 'timeout') {
    if (src.controller.failure) fail(`the source firmware stopped on an error: ${String(src.controller.failure)}`);
    const problem = checkStream(src.stage, src.session);
    fail(problem ?? `${what} were not all confirmed within ${CONFIRM_MS} ms (link ${src.linkState}; ${describeResponses(src.stage)})`);
  }
}

function describeResponses(stage: FaultStage): string {
  const n = naks(stage).map((r) => `NAK ${NAK_NAMES[r.frame.reason] ?? r.frame.reason} ${r.frame.seq}`);
  const acks = stage.received.filter((r) => r.frame.type === FrameType.Ack).map((r) => r.frame.seq);
  return `last ACK ${acks.length === 0 ? 'none' : Math.max(...acks)}${n.length > 0 ? `, ${n.slice(-3).join(', ')}` : ''}, ${stage.highestSeq} entries sent`;
}

/** The protocol checks, then the read-back when the control socket is there. */
async function verify(ctx: CaseContext, src: SourceSide, written: readonly Written[]): Promise<string> {
  const problem = checkStream(src.stage, src.session);
  if (problem) fail(problem);
  if (ctx.control === null) return 'data not read back (no --target-control)';
  const control = ctx.control;
  const mismatch = await checkReadBack((lba, count) => control.read(ctx.settings.lun, lba, count), written);
  if (mismatch) fail(mismatch);
  return 'data read back identical';
}

/** What a HELLO from the target on data connection `conn` must say to this source. */
function helloExpectations(src: SourceSide, conn: number): Parameters<typeof checkHello>[1] {
  return { conn, connections: src.stage.connections, session: src.session, highestSent: src.stage.highestSeq };
}

/** The tag a WRITE frame carries (header bytes 24-31): how a case picks its own writes out of the stream. */
function frameTag(bytes: Uint8Array): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return v.getUint32(24) * 2 ** 32 + v.getUint32(28);
}

/** The first copy of the WRITE tagged `tag` meets `fate`; everything else passes. */
function strikeWrite(tag: number, fate: FrameFate, seen: { seq: number; bytes: Uint8Array | null }): (f: OutgoingFrame) => FrameFate {
  return (f) => {
    if (f.type !== FrameType.Write || frameTag(f.bytes) !== tag) return PASS;
    if (seen.seq === 0) {
      seen.seq = f.seq;
      seen.bytes = f.bytes.slice();
      return fate;
    }
    return PASS;
  };
}

// ---- the cases ----------------------------------------------------------------------------------

const hello: ConformanceCase = {
  name: 'hello',
  proves: 'the target answers HELLO on every data connection with protocol version 2, the connection it opens, '
    + 'our connection count and no feature we lack, and mirrors a write',
  control: 'read-back',
  timeoutMs: 30_000,
  run: (ctx) => withSource(ctx, async (src) => {
    // The link is up once one connection is ready; the others' HELLOs may still be on their way.
    const everyConnection = (): boolean => [...Array(src.stage.connections).keys()].every((k) => hellos(src.stage).some((r) => r.conn === k));
    await src.stage.until(everyConnection, HELLO_WAIT_MS);
    const heard = hellos(src.stage);
    for (let k = 0; k < src.stage.connections; k++) {
      const h = heard.find((r) => r.conn === k && r.frame.peerSession === src.session) ?? heard.find((r) => r.conn === k);
      if (!h) fail(`no HELLO from the target on data connection ${k}`);
      const problem = checkHello(h.frame, helloExpectations(src, k));
      if (problem) fail(problem);
    }
    const w = [data(ctx, 0, ctx.area, 8)];
    await confirmAll(src, w);
    return { verdict: 'pass', reason: `version ${PROTOCOL_VERSION} HELLO on ${src.stage.connections} connection(s), a write confirmed; ${await verify(ctx, src, w)}` };
  }),
};

const splitCoalesced: ConformanceCase = {
  name: 'split-coalesced',
  proves: 'the target reassembles frames written in odd pieces (1 to 701 bytes) and several frames per write',
  control: 'read-back',
  timeoutMs: 40_000,
  run: (ctx) => withSource(ctx, async (src) => {
    src.stage.setShape('split-coalesce');
    const writes = Array.from({ length: 12 }, (_, k) => data(ctx, k, ctx.area + k * 5, 1 + (k % 5)));
    await confirmAll(src, writes);
    // A frame misread from its pieces is corrupt to the target. A gap is one too on a single
    // connection; across several, frames overtake each other, and a target may NAK that as a gap.
    const n = naks(src.stage).filter((r) => r.at >= adoptedAt(src.stage, src.session));
    const suspect = n.find((r) => r.frame.reason === NakReason.Corrupt || src.stage.connections === 1);
    if (suspect) fail(`the target NAKed (${NAK_NAMES[suspect.frame.reason]} ${suspect.frame.seq}) frames that were only split and coalesced`);
    const overtaken = n.length === 0 ? 'no NAK' : `${n.length} gap NAK(s) for frames overtaking each other across connections`;
    return { verdict: 'pass', reason: `12 writes in odd pieces confirmed, ${overtaken}; ${await verify(ctx, src, writes)}` };
  }),
};

function corruptCase(name: string, where: 'header' | 'payload'): ConformanceCase {
  // Header: a bit of the LBA field, so only the header CRC catches it. Payload: a bit of the data.
  const at = where === 'header' ? 20 : HEADER_BYTES + 100;
  return {
    name,
    proves: `a WRITE whose ${where} CRC fails is NAKed or ignored, never applied; the re-sent copy is`,
    control: 'read-back',
    timeoutMs: 40_000,
    run: (ctx) => withSource(ctx, async (src) => {
      const writes = Array.from({ length: 4 }, (_, k) => data(ctx, k, ctx.area + k * 8, 8));
      const struck = { seq: 0, bytes: null as Uint8Array | null };
      src.stage.setFate(strikeWrite(writes[1]!.tag, { kind: 'flip', at, mask: 0x04 }, struck));
      await confirmAll(src, writes);
      if (struck.seq === 0) fail('the battery could not corrupt a WRITE (none was sent)');
      const nak = naks(src.stage).find((r) => r.frame.seq === struck.seq);
      const how = nak ? `NAKed (${NAK_NAMES[nak.frame.reason]})` : 'ignored (recovered by the source\'s ack timeout)';
      return { verdict: 'pass', reason: `the corrupt copy of seq ${struck.seq} was ${how}, the re-sent one applied; ${await verify(ctx, src, writes)}` };
    }),
  };
}

const duplicate: ConformanceCase = {
  name: 'duplicate',
  proves: 'a WRITE received twice is applied once: a stale copy arriving after a later write to the same sectors changes nothing',
  control: 'read-back',
  timeoutMs: 40_000,
  run: (ctx) => withSource(ctx, async (src) => {
    const first = data(ctx, 0, ctx.area, 8);
    const second = data(ctx, 1, ctx.area, 8);
    const later = data(ctx, 2, ctx.area + 16, 8);
    const kept = { seq: 0, bytes: null as Uint8Array | null };
    src.stage.setFate(strikeWrite(first.tag, PASS, kept));
    await confirmAll(src, [first]);
    await confirmAll(src, [second]);
    const conn = [...Array(src.stage.connections).keys()].find((k) => src.stage.isOpen(k));
    if (conn === undefined || kept.bytes === null || !src.stage.inject(conn, kept.bytes)) fail('the battery could not send the duplicate (no connection open)');
    const injectedAt = src.clock.now();
    const reacked = await src.stage.until(() => src.stage.received.some((r) => r.at > injectedAt && r.frame.type === FrameType.Ack), 1_000);
    await confirmAll(src, [later], 'the write after the duplicate');
    const reason = `the duplicate of seq ${kept.seq} was ${reacked ? 're-acknowledged' : 'dropped silently'}`;
    return { verdict: 'pass', reason: `${reason}; ${await verify(ctx, src, [first, second, later])}` };
  }),
};

const gap: ConformanceCase = {
  name: 'gap',
  proves: 'a missing entry is NAKed as a gap and nothing behind it is applied or confirmed before it arrives',
  control: 'read-back',
  timeoutMs: 40_000,
  run: (ctx) => withSource(ctx, async (src) => {
    const writes = [data(ctx, 0, ctx.area, 8), data(ctx, 1, ctx.area, 8), data(ctx, 2, ctx.area + 16, 8)];
    const lost = { seq: 0, bytes: null as Uint8Array | null };
    src.stage.setFate(strikeWrite(writes[0]!.tag, { kind: 'drop' }, lost));
    await confirmAll(src, writes);
    const nak = naks(src.stage).find((r) => r.frame.seq === lost.seq);
    if (!nak) fail(`the target never NAKed the gap at seq ${lost.seq} (the source's ack timeout re-sent it; ${describeResponses(src.stage)})`);
    const how = `seq ${lost.seq} withheld: NAKed (${NAK_NAMES[nak.frame.reason]}), nothing behind it confirmed early`;
    return { verdict: 'pass', reason: `${how}; ${await verify(ctx, src, writes)}` };
  }),
};

function refusedLockCase(policy: 'halt-resume' | 'retransmit'): ConformanceCase {
  const action = policy === 'halt-resume' ? RejectAction.Held : RejectAction.Discarded;
  const other = policy === 'halt-resume' ? 'retransmit' : 'halt-resume';
  return {
    name: `refused-lock-${policy}`,
    proves: policy === 'halt-resume'
      ? 'a LOCK refused under halt-resume is announced as held, granted once the region is free, and the writes behind it applied without a re-send'
      : 'a LOCK refused under retransmit is announced as discarded, and the re-sent LOCK and writes are applied once the region is free',
    control: 'required',
    timeoutMs: 40_000,
    run: async (ctx) => {
      const control = ctx.control;
      if (control === null) return { verdict: 'skip', reason: 'needs --target-control: only a target told to lock the region refuses a mirror lock' };
      return withSource(ctx, async (src) => {
        // The local lock is released holdMs after its grant, on the target's clock: a LOCK that left
        // in the first half of that surely arrived while it was held. One that left later (a busy
        // machine) proves nothing, and the case tries again with a longer hold.
        let w: Written[] = [];
        let rejected: ReceivedRecord | undefined;
        for (let attempt = 0, holdMs = LOCK_HOLD_MS; attempt < LOCK_ATTEMPTS && !rejected; attempt++, holdMs *= 4) {
          await control.holdLock(ctx.settings.lun, ctx.area, LOCK_REGION_SECTORS, holdMs);
          const grantedAt = src.clock.now();
          const sentBefore = src.stage.sent.length;
          w = [...w, data(ctx, attempt, ctx.area, 8)];
          await confirmAll(src, w.slice(-1));
          rejected = src.stage.received.find((r) => r.frame.type === FrameType.LockRejected);
          const lock = src.stage.sent.slice(sentBefore).find((s) => s.type === FrameType.Lock);
          if (!rejected && lock && lock.at - grantedAt < holdMs / 2) {
            const into = Math.round(lock.at - grantedAt);
            fail(`the target granted a LOCK on a region its own lock held (no LOCK_REJECTED; the LOCK left ${into} ms into a ${holdMs} ms hold)`);
          }
        }
        if (!rejected) fail(`the battery could not get a LOCK to the target while its local lock was held (${LOCK_ATTEMPTS} tries, this machine is too busy)`);
        const rej = rejected.frame as LockRejectedFrame;
        if (rej.action !== action) return { verdict: 'skip', reason: `the target applies ${other}; run against a target configured for ${policy}` };
        const firstAck = src.stage.received.find((r) => r.frame.type === FrameType.Ack && r.frame.seq >= rej.seq && r.at >= rejected.at);
        if (policy === 'halt-resume') {
          const grant = src.stage.received.find((r) => r.frame.type === FrameType.LockGranted && r.frame.seq === rej.seq && r.at >= rejected.at);
          if (!grant) fail(`the held LOCK seq ${rej.seq} was never granted`);
          if (firstAck && firstAck.at < grant.at) fail(`the target confirmed the held LOCK seq ${rej.seq} before granting it`);
        } else {
          const resent = src.stage.sent.find((s) => s.seq === rej.seq && s.copy > 0 && s.at >= rejected.at);
          if (!resent) fail(`the source never re-sent the discarded LOCK seq ${rej.seq}`);
          if (firstAck && firstAck.at < resent.at) fail(`the target confirmed the discarded LOCK seq ${rej.seq} before it was re-sent`);
        }
        const how = policy === 'halt-resume' ? 'held), then granted' : 'discarded), then re-sent and granted';
        return { verdict: 'pass', reason: `LOCK seq ${rej.seq} refused (${how}; ${await verify(ctx, src, w)}` };
      });
    },
  };
}

const reconnect: ConformanceCase = {
  name: 'reconnect',
  proves: 'data connections closed and opened again mid-stream lose nothing and apply nothing twice; the target says where to resume in its HELLO',
  control: 'read-back',
  timeoutMs: 50_000,
  run: (ctx) => withSource(ctx, async (src) => {
    const writes = Array.from({ length: 12 }, (_, k) => data(ctx, k, ctx.area + (k % 6) * 8, 8));
    await confirmAll(src, writes.slice(0, 4));
    const dropAt = { at: 0 };
    src.stage.setFate((f) => {
      if (dropAt.at === 0 && f.type === FrameType.Write && frameTag(f.bytes) === writes[5]!.tag) {
        dropAt.at = src.clock.now();
        setImmediate(() => src.stage.dropConnections('conformance: connections closed mid-stream'));
      }
      return PASS;
    });
    await confirmAll(src, writes.slice(4, 8), 'the writes across the reconnection');
    await confirmAll(src, writes.slice(8), 'the writes after it');
    if (dropAt.at === 0) fail('the battery could not close the connections mid-stream');
    const after = hellos(src.stage).filter((r) => r.at > dropAt.at);
    if (after.length === 0) fail('no HELLO from the target after the connections were opened again');
    for (const h of after) {
      const problem = checkHello(h.frame, helloExpectations(src, h.conn as number));
      if (problem) fail(problem);
    }
    return { verdict: 'pass', reason: `connections re-opened (${after.length} HELLO), 12 writes confirmed; ${await verify(ctx, src, writes)}` };
  }),
};

const restart: ConformanceCase = {
  name: 'restart',
  proves: 'a source that restarts (a new session id, a new stream from seq 1) is taken as a new session: '
    + 'its entries are applied, not mistaken for the old stream\'s',
  control: 'read-back',
  timeoutMs: 60_000,
  run: async (ctx) => {
    const old = Array.from({ length: 6 }, (_, k) => data(ctx, k, ctx.area + k * 8, 8));
    const oldSession = await withSource(ctx, async (src) => {
      await confirmAll(src, old, 'the first session\'s writes');
      const problem = checkStream(src.stage, src.session);
      if (problem) fail(problem);
      return src.session;
    });
    return withSource(ctx, async (src) => {
      if (src.session === oldSession) fail('the source drew the same session id twice');
      const fresh = [data(ctx, 10, ctx.area, 8)];
      await confirmAll(src, fresh, 'the new session\'s write');
      for (const h of hellos(src.stage)) {
        const problem = checkHello(h.frame, helloExpectations(src, h.conn as number));
        if (problem) fail(problem);
      }
      return { verdict: 'pass', reason: `session ${oldSession} then ${src.session}: the new stream applied from seq 1; ${await verify(ctx, src, fresh)}` };
    });
  },
};

const version: ConformanceCase = {
  name: 'version',
  proves: 'a frame of another protocol version (sound CRCs) is refused as an incompatible peer, never read as noise: the target takes the link down',
  control: 'none',
  timeoutMs: 40_000,
  run: (ctx) => withSource(ctx, async (src) => {
    const frame = otherVersionFrame(src);
    const conn = [...Array(src.stage.connections).keys()].find((k) => src.stage.isOpen(k));
    if (conn === undefined || !src.stage.inject(conn, frame)) fail('the battery could not send the frame (no connection open)');
    const at = src.clock.now();
    const down = await src.stage.until(() => src.stage.closedHeard.some((c) => c.at >= at) || src.linkState !== 'up', 6_000);
    if (!down) fail(`the target kept the link up after a version ${PROTOCOL_VERSION + 1} frame (it must refuse the peer as incompatible)`);
    return { verdict: 'pass', reason: `a version ${PROTOCOL_VERSION + 1} frame made the target take the link down` };
  }),
};

/**
 * A frame the target cannot take for noise: an UNLOCK from the firmware's encoder with the version
 * byte bumped and both CRCs recomputed (the header's layout is the same in every version).
 */
function otherVersionFrame(src: SourceSide): Uint8Array {
  const f = encodeFrame({ type: FrameType.Unlock, lun: src.settings.lun, seq: src.stage.highestSeq + 1, flags: 0, lockId: 1 }).slice();
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  f[2] = PROTOCOL_VERSION + 1;
  v.setUint32(44, crc32cRange(f, 0, 44) >>> 0);
  v.setUint32(f.length - 4, crc32cRange(f, 0, f.length - 4) >>> 0);
  return f;
}

/** The battery, in the order it runs (docs/conformance.md 4). */
export const CASES: readonly ConformanceCase[] = [
  hello, splitCoalesced, corruptCase('corrupt-header', 'header'), corruptCase('corrupt-payload', 'payload'), duplicate, gap,
  refusedLockCase('halt-resume'), refusedLockCase('retransmit'), reconnect, restart, version,
];

export { CaseFailure };
