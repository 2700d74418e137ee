/**
 * An entry module for controller processes started by tests (host/runtime/spawn.ts `entryModule`):
 * it plants the firmware bugs named by `--plant a,b` (test/support/planted-bugs.ts), then runs the
 * `mirrorlab` command on the rest of its arguments. This is how a planted bug reaches a child
 * process: through test code, never through a flag or config file of mirrorlab (docs/conventions.md 15).
 */
import { main } from '../../hil/cli/main.ts';
import { PLANTED_BUGS, plantAll, type PlantedBug } from './planted-bugs.ts';

const argv = process.argv.slice(2);
const bugs = argv[0] === '--plant' ? (argv.splice(0, 2)[1] ?? '').split(',').filter((b) => b !== '') : [];
const unknown = bugs.filter((b) => !PLANTED_BUGS.includes(b as PlantedBug));
if (unknown.length > 0) throw new Error(`controller-entry: unknown bugs ${unknown.join(', ')}`);
plantAll(bugs as PlantedBug[]);
process.exitCode = await main(argv);
