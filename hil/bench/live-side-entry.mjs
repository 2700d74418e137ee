// A live-bench side runs as a child process (hil/bench/live-side.ts); forked children do not
// inherit the parent's TypeScript loader, so register tsx here first.
import { register } from 'tsx/esm/api';

register();
const { serveSide } = await import('./live-side.ts');
serveSide();
