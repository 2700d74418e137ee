#!/usr/bin/env node
// The `mirrorlab` command. The sources are TypeScript; tsx compiles them on load, so there is no
// build step to forget and `npx mirrorlab` always runs what is checked out.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../hil/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
