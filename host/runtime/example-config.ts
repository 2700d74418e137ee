/**
 * What `mirrorlab controller --print-example-config` prints: a complete config for controller A of a
 * pair, every field shown (docs/controller-process.md 2 explains each). A test parses it, so it stays
 * valid.
 */
export const EXAMPLE_CONFIG = {
  name: 'A',
  id: 1,
  onLockReject: 'halt-resume',
  luns: [
    { lun: 0, volume: 'file:/var/lib/mirrorlab/a-lun0.img:64MiB', mirror: { peer: 'B', mode: 'speculative' }, lockRegionSectors: 2048 },
    { lun: 1, volume: { raid: 'raid1', members: ['file:/var/lib/mirrorlab/a-lun1-m0.img:64MiB', 'file:/var/lib/mirrorlab/a-lun1-m1.img:64MiB'] }, replicaOf: 'B' },
    { lun: 2, volume: 'mem:16MiB' },
  ],
  peers: [{ name: 'B', link: 'tcp-listen:0.0.0.0:7700', connections: 2 }],
  supervision: { heartbeatMs: 100, interruptionMs: 1000, probationMs: 2000, connectRetryMs: 200 },
  limits: { rollbackLogBytesMax: 67_108_864, payloadBytesMax: 1_048_576 },
  control: { path: '/run/mirrorlab/A.sock', connectionsMax: 16, requestsInFlightMax: 64, frameTimeoutMs: 10_000 },
  telemetry: '/var/log/mirrorlab/A.jsonl',
  shutdown: { drainMs: 5000 },
  metadata: 'file:/var/lib/mirrorlab/a.meta:4MiB',
};
