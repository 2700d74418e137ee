import { describe, expect, it } from 'vitest';
import type { StorageController } from '../../../firmware/controller/storage-controller.ts';
import { FEATURE_BITS, FRAME_OVERHEAD_BYTES, HEARTBEAT_PAYLOAD_BYTES } from '../../../firmware/protocol/frame.ts';
import type { Topology } from '../../../hil/emulator/topology.ts';
import { MemoryDisk } from '../../../host/disks/memory.ts';
import { expectMirrorsEqual, linksUp, randomWrites, runWrites, settle, smallTopology } from '../../support/harness.ts';
import { withPlantedBugs } from '../../support/planted-bugs.ts';

/** The tag tables of the A -> B mirror of LUN 0, on both sides. */
function tablesOfLun0(topo: Topology) {
  const source = topo.source.tablesOf('B', 0, 'source')!;
  const target = topo.target.tablesOf('A', 0, 'target')!;
  return { source, target };
}

function tagCounters(c: StorageController) {
  return c.status()[0]!.tables.counters;
}

describe('tag tables and tokens (docs/tag-tables.md, "Tag tables", "Tokens")', () => {
  it.each([
    ['speculative, explicit locks', { mode: 'speculative' as const }],
    ['speculative, implied locks, batched', { mode: 'speculative' as const, locks: 'implied' as const, batch: true }],
    ['async', { mode: 'async' as const }],
    ['sync', { mode: 'sync' as const }],
  ])('%s: every write enters both tables, and tokens empty them again without a frame of their own', async (_name, opts) => {
    const { topo, tel } = smallTopology(opts);
    await linksUp(topo);
    const results = await runWrites(topo, topo.source, 0, randomWrites(300, 8, 4096, 3), 16);
    expect(results.every((r) => r.error === undefined)).toBe(true);
    await settle(topo);
    // Heartbeats carry the last tokens once the ACKs have stopped.
    await topo.clock.run({ untilMs: topo.clock.now() + 3 * topo.source.limits.heartbeatMs });
    const { source, target } = tablesOfLun0(topo);
    expect(source.table.size).toBe(0);
    expect(target.table.size).toBe(0);
    expect(source.trusted && target.trusted).toBe(true);
    const a = tagCounters(topo.source);
    const b = tagCounters(topo.target);
    expect(a.entriesAdded).toBe(300);
    expect(a.tokensReceived).toBe(300);
    expect(b.entriesAdded).toBe(300);
    expect(b.tokensSent).toBe(300);
    expect(b.tokensTaken).toBe(300);
    // No frame exists only for tokens: every frame type sent is one the protocol had anyway.
    const types = new Set(tel.of('frame.sent').map((e) => e.type));
    for (const t of types) expect(['HELLO', 'LOCK', 'WRITE', 'UNLOCK', 'ACK', 'LOCK_GRANTED', 'LOCK_REJECTED', 'NAK', 'BATCH']).toContain(t);
    await expectMirrorsEqual(topo);
  });

  it('while writes flow, the tables hold only what is between acceptance and the token\'s return', async () => {
    const { topo } = smallTopology({ mode: 'speculative' });
    await linksUp(topo);
    let most = 0;
    const watch = (): void => {
      most = Math.max(most, tablesOfLun0(topo).source.table.size, tablesOfLun0(topo).target.table.size);
      if (topo.clock.now() < 200) topo.clock.setTimeout(watch, 0.5);
    };
    watch();
    await runWrites(topo, topo.source, 0, randomWrites(2000, 8, 4096, 5), 8);
    expect(most).toBeGreaterThan(0);
    // Eight in flight, a round trip or two of tokens behind them: far from 2,000.
    expect(most).toBeLessThan(64);
  });

  it('a peer without the tags feature gets the protocol as before: no tokens, no tables kept, the same mirror', async () => {
    const { topo, tel } = smallTopology({ mode: 'speculative' });
    // B's firmware predates tokens: it offers every feature but `tags` (reaching past `private`: test code only).
    const link = (topo.target as unknown as { peers: Map<string, { link: { features: number } }> }).peers.get('A')!.link;
    link.features &= ~FEATURE_BITS.tags;
    await linksUp(topo);
    await runWrites(topo, topo.source, 0, randomWrites(200, 8, 4096, 7), 16);
    await settle(topo);
    await topo.clock.run({ untilMs: topo.clock.now() + 500 });
    const { source, target } = tablesOfLun0(topo);
    expect(source.table.size).toBe(0);
    expect(target.table.size).toBe(0);
    // Not kept, so not trusted: a resync of this mirror copies everything, as it always did.
    expect(source.trusted).toBe(false);
    expect(tagCounters(topo.source).tokensReceived).toBe(0);
    expect(tagCounters(topo.target).tokensSent).toBe(0);
    // Nothing with tokens went either way: heartbeats are the 60-byte ones of a peer without `tags`.
    for (const c of [topo.source, topo.target]) {
      const link = c.status()[0]!.link.counters;
      expect(link.heartbeatBytesSent / link.heartbeatsSent).toBe(FRAME_OVERHEAD_BYTES + HEARTBEAT_PAYLOAD_BYTES);
    }
    expect(tel.of('frame.sent').some((e) => e.type === 'ACK')).toBe(true);
    await expectMirrorsEqual(topo);
  });

  it('with a peer that offers tags, heartbeats carry tokens (their longer payload)', async () => {
    const { topo } = smallTopology({ mode: 'speculative' });
    await linksUp(topo);
    await topo.clock.run({ untilMs: topo.clock.now() + 500 });
    const link = topo.source.status()[0]!.link.counters;
    expect(link.heartbeatBytesSent / link.heartbeatsSent).toBeGreaterThan(FRAME_OVERHEAD_BYTES + HEARTBEAT_PAYLOAD_BYTES);
  });
});

describe('a write accepted before the peer\'s HELLO', () => {
  it('enters the table even once the peer\'s heartbeats have been heard: only a HELLO can say the peer keeps no tokens', async () => {
    const { topo } = smallTopology({ mode: 'async' });
    // The peer's heartbeats arrive first (its session is known), its HELLO only once a connection is open.
    await topo.clock.run({ until: () => topo.source.status()[0]!.link.peerSession !== 0 && topo.source.status()[0]!.link.state !== 'up', untilMs: 50 });
    expect(topo.source.status()[0]!.link.peerSession).not.toBe(0);
    topo.source.submitWrite(0, 240, new Uint8Array(4096).fill(7), () => {}, 16);
    expect(tablesOfLun0(topo).source.table.has(16)).toBe(true);
    await linksUp(topo);
    await settle(topo);
    await expectMirrorsEqual(topo);
  });
});

describe('durability (docs/tag-tables.md, "Durability")', () => {
  /** Volumes with a volatile write cache: what a power cut loses is what was not flushed. */
  function cachedTopology(mode: 'speculative' | 'sync') {
    return smallTopology({
      mode,
      makeVolume: (name, clock, random) => new MemoryDisk({
        name, sectorCount: 8192, clock, random: random.fork(name), writeCacheBytesMax: 1 << 20, service: { fixedMs: 0.02, perByteMs: 0.000_001 },
      }),
    });
  }

  /** Run writes, cut the source volume's power at `cutAtMs`, and list the acknowledged writes its media lost. */
  async function ackedLostAtCut(mode: 'speculative' | 'sync', cutAtMs: number): Promise<number> {
    const { topo } = cachedTopology(mode);
    await linksUp(topo);
    const start = topo.clock.now();
    const acked: { lba: number; data: Uint8Array }[] = [];
    let n = 0;
    const issue = (): void => {
      if (n >= 400) return;
      const i = n++;
      const lba = (i % 512) * 8;
      const data = new Uint8Array(4096).fill((i % 251) + 1);
      topo.source.submitWrite(0, lba, data, (err) => {
        if (err === undefined) acked.push({ lba, data });
        issue();
      });
    };
    for (let q = 0; q < 8; q++) issue();
    await topo.clock.run({ untilMs: start + cutAtMs });
    const volume = topo.pairs[0]!.primaryVolume as MemoryDisk;
    // What the media holds at the cut: the last acknowledged write of each place must be there.
    const last = new Map<number, Uint8Array>();
    for (const a of acked) last.set(a.lba, a.data);
    let lost = 0;
    for (const [lba, data] of last) if (!Buffer.from(volume.peekDurable(lba, 8)).equals(Buffer.from(data))) lost++;
    topo.stop();
    return lost;
  }

  it.each(['speculative', 'sync'] as const)('%s: a host is acknowledged only once its write is durable on the source volume', async (mode) => {
    for (const cut of [3, 7.5, 12.25]) expect(await ackedLostAtCut(mode, cut), `cut at ${cut} ms`).toBe(0);
  });

  it('with the flush skipped (a planted bug), a power cut of the source loses acknowledged writes', async () => {
    const lost = await withPlantedBugs(['flush-skipped'], async () => {
      let n = 0;
      for (const cut of [3, 7.5, 12.25]) n += await ackedLostAtCut('speculative', cut);
      return n;
    });
    expect(lost).toBeGreaterThan(0);
  });

  it('a target gives a write\'s token only once the write is on its media; with its flush skipped (planted) it gives it sooner', async () => {
    const check = async (): Promise<{ checked: number; missing: number }> => {
      const { topo } = cachedTopology('speculative');
      await linksUp(topo);
      const volume = topo.pairs[0]!.secondaryVolume as MemoryDisk;
      const written = new Map<number, { lba: number; data: Uint8Array }>();
      let checked = 0;
      let missing = 0;
      // Each time the source deletes entries (tokens in), the target's media must hold those writes.
      const table = tablesOfLun0(topo).source;
      const drop = table.drop.bind(table);
      table.drop = (tags: Iterable<number>): number => {
        for (const tag of tags) {
          const w = written.get(tag);
          if (w === undefined) continue;
          checked++;
          if (!Buffer.from(volume.peekDurable(w.lba, 8)).equals(Buffer.from(w.data))) missing++;
        }
        return drop(tags);
      };
      let n = 0;
      const issue = (): void => {
        if (n >= 300) return;
        const i = n++;
        const tag = 1_000 + i;
        const data = new Uint8Array(4096).fill((i % 251) + 1);
        written.set(tag, { lba: i * 8, data });
        topo.source.submitWrite(0, i * 8, data, () => issue(), tag);
      };
      for (let q = 0; q < 8; q++) issue();
      await settle(topo);
      await topo.clock.run({ untilMs: topo.clock.now() + 500 });
      return { checked, missing };
    };
    const good = await check();
    expect(good.checked).toBe(300);
    expect(good.missing).toBe(0);
    const broken = await withPlantedBugs(['target-never-flushes'], check);
    expect(broken.missing).toBeGreaterThan(0);
  });
});

describe('suspension (docs/tag-tables.md, "Suspension")', () => {
  /** Short supervision and suspension, so a cut and its aftermath take hundreds of virtual ms. */
  const LIMITS = { heartbeatMs: 5, interruptionMs: 20, probationMs: 40, suspendAfterMs: 100 };

  /** Hosts keep writing while the link is cut for `cutMs`; returns when everything settled again. */
  async function cutWhileWriting(opts: { mode: 'speculative' | 'async' | 'sync'; cutMs: number; limits?: object; tagsOff?: boolean }) {
    const { topo, tel } = smallTopology({ mode: opts.mode, limits: { ...LIMITS, ...opts.limits } });
    if (opts.tagsOff) {
      const link = (topo.target as unknown as { peers: Map<string, { link: { features: number } }> }).peers.get('A')!.link;
      link.features &= ~FEATURE_BITS.tags;
    }
    await linksUp(topo);
    const t0 = topo.clock.now();
    let n = 0;
    let stop = false;
    const issue = (): void => {
      if (stop) return;
      const i = n++;
      topo.source.submitWrite(0, (i * 8) % 4096, new Uint8Array(4096).fill((i % 251) + 1), () => {
        topo.clock.setTimeout(issue, 0.2);
      });
    };
    for (let q = 0; q < 4; q++) issue();
    topo.clock.setTimeout(() => topo.link.blackhole('both', true), 10);
    topo.clock.setTimeout(() => topo.link.blackhole('both', false), 10 + opts.cutMs);
    let tableAtHeal = -1;
    topo.clock.setTimeout(() => (tableAtHeal = tablesOfLun0(topo).source.table.size), 10 + opts.cutMs);
    topo.clock.setTimeout(() => (stop = true), 10 + opts.cutMs + 200);
    await topo.clock.run({ untilMs: t0 + 10 + opts.cutMs + 200 });
    await settle(topo);
    return { topo, tel, tableAtHeal };
  }

  it.each(['speculative', 'sync', 'async'] as const)('%s: a link down past suspendAfterMs suspends the mirror; hosts go on, acknowledged locally; the link back, a resync, equal copies', async (mode) => {
    const { topo, tel, tableAtHeal } = await cutWhileWriting({ mode, cutMs: 400 });
    const states = tel.of('mirror.state').filter((e) => e.node === 'A').map((e) => e.state);
    expect(states).toEqual(['suspended', 'needs-resync', 'resyncing', 'in-sync']);
    const suspendedAt = tel.of('mirror.state').find((e) => e.state === 'suspended')!.t;
    const linkDownAt = tel.of('link.supervision').find((e) => e.node === 'A' && e.event === 'down')!.t;
    expect(suspendedAt - linkDownAt).toBeCloseTo(100, 6);
    // Hosts were acknowledged during the cut: in sync and speculative mode on the local copy alone.
    const acks = tel.of('host.ack').filter((e) => e.t > suspendedAt && e.t < suspendedAt + 200);
    expect(acks.length).toBeGreaterThan(10);
    if (mode !== 'async') expect(acks.every((e) => e.mode === 'suspended')).toBe(true);
    // The writes of the suspension are named by the source's table until the resync.
    expect(tableAtHeal).toBeGreaterThan(10);
    const a = topo.source.status()[0]!.source!.counters;
    expect(a.suspensions).toBe(1);
    expect(a.writesSuspended).toBeGreaterThan(10);
    // The next stream has a new number, and the target abandoned the old one for it.
    const streams = tel.of('stream.start').filter((e) => e.role === 'target' && e.node === 'B');
    expect(streams.map((e) => e.stream ?? 1)).toEqual([1, 2]);
    await expectMirrorsEqual(topo);
  });

  it('async: the backlog is dropped at the suspension, not kept until the link is back', async () => {
    const { tel } = await cutWhileWriting({ mode: 'async', cutMs: 400 });
    const suspendedAt = tel.of('mirror.state').find((e) => e.state === 'suspended')!.t;
    const before = tel.of('rollback.append').filter((e) => e.node === 'A' && e.t < suspendedAt).at(-1)!;
    expect(before.entries).toBeGreaterThan(0);
    // After it, the next entries appended (read locks aside, none) are of a new stream, from 1.
    const after = tel.of('rollback.append').filter((e) => e.node === 'A' && e.t >= suspendedAt);
    expect(after[0]!.seq).toBe(1);
  });

  it('a cut shorter than suspendAfterMs suspends nothing: the stream goes on', async () => {
    const { tel } = await cutWhileWriting({ mode: 'speculative', cutMs: 50 });
    expect(tel.of('mirror.state')).toEqual([]);
    expect(tel.of('stream.start').filter((e) => e.role === 'target' && e.node === 'B')).toHaveLength(1);
  });

  it('a table that fills during a suspension overflows: it is no longer trusted, and says so in status', async () => {
    const { topo } = await cutWhileWriting({ mode: 'speculative', cutMs: 400, limits: { tagEntriesMax: 16 } });
    const { source } = tablesOfLun0(topo);
    expect(source.table.overflowed).toBe(true);
    expect(source.trusted).toBe(false);
    expect(topo.source.status()[0]!.tables.entries.find((t) => t.role === 'source')).toMatchObject({ lun: 0, overflowed: true, trusted: false });
    expect(topo.source.status()[0]!.tables.counters.overflows).toBe(1);
    await expectMirrorsEqual(topo);
  });

  it('with a peer without tags nothing is suspended: hosts wait for the link, as they always did', async () => {
    const { tel } = await cutWhileWriting({ mode: 'speculative', cutMs: 400, tagsOff: true });
    expect(tel.of('mirror.state')).toEqual([]);
    expect(tel.of('host.ack').some((e) => e.mode === 'suspended')).toBe(false);
  });
});
