import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TraceEvent } from '../../../hil/trace/events.ts';
import { FanoutTelemetry, TraceFileError, TraceRecorder } from '../../../hil/trace/trace.ts';

const events: TraceEvent[] = [
  { kind: 'host.write', t: 0, node: 'A', tag: 1, lun: 0, lba: 8, count: 8 },
  { kind: 'link.fault', t: 0.5, node: 'A', fault: 'drop', peer: 'B', type: 'WRITE', seq: 2, lun: 0, delayMs: 0 },
  { kind: 'link.fault', t: 3, node: 'link', fault: 'partition.start', untilMs: 9 },
];

describe('TraceRecorder', () => {
  it('fails at once, with a typed error naming the path and the reason, when the file cannot be opened', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mirrorlab-trace-'));
    const missing = join(dir, 'no', 'such', 'dir', 'x.jsonl');
    let err: unknown;
    try {
      new TraceRecorder(missing);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TraceFileError);
    expect((err as TraceFileError).code).toBe('ML_ERR_TRACE_FILE');
    expect((err as Error).message).toBe(`trace file ${missing} could not be opened: ENOENT: no such file or directory`);
    expect(() => new TraceRecorder(dir)).toThrow(/could not be opened: EISDIR/);
    const file = join(dir, 'file');
    writeFileSync(file, '');
    expect(() => new TraceRecorder(join(file, 'x.jsonl'))).toThrow(/could not be opened: ENOTDIR/);
  });

  it('writes every event, the harness\'s link faults with the firmware\'s, as JSON lines, and hashes them', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mirrorlab-trace-')), 'run.jsonl');
    const a = new TraceRecorder(path);
    const b = new TraceRecorder();
    const fanout = new FanoutTelemetry([a, b]);
    for (const e of events) fanout.emit(e);
    await a.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual(events);
    expect(a.count).toBe(3);
    expect(a.digest()).toBe(b.digest());
  });
});
