// A process that records `count` small records into a history, for the concurrent-writers test.
import { recordHistory } from '../../../hil/history/record.ts';

const [path, writer, count] = process.argv.slice(2);
if (path === undefined || writer === undefined || count === undefined) {
  process.stderr.write('usage: history-writer-child.ts PATH WRITER COUNT\n');
  process.exit(2);
}
for (let i = 0; i < Number(count); i++) {
  await recordHistory(path, {
    id: `w${writer}-${i}`, kind: 'campaign', startedAt: new Date(), finishedAt: new Date(), settings: {}, summary: {},
    runs: [{ seed: Number(writer) * 1000 + i, mode: 'sync', onLockReject: 'retransmit', verdict: 'consistent', violations: [], reproduce: `npx mirrorlab emulate --seed ${i}` }],
    identity: { version: '0.1.0', sourceHash: 'b'.repeat(64) }, commit: null,
  });
}
