/**
 * Self-describing write data lives in `host/workload/data.ts`, since a host-side client of a
 * controller process writes it too (docs/controller-process.md); the harness's workloads and the
 * content checks import it from here as before.
 */
export * from '../../host/workload/data.ts';
