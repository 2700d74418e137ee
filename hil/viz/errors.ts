import { MirrorlabError } from '../../firmware/errors.ts';

/**
 * A trace file the visualizer cannot read as a trace: not JSON lines, an event without a kind or a
 * time, a line or an event count past the limits. The message names the file, the line, what was
 * wrong and what a trace is; the CLI prints it in one line and exits 2.
 */
export class TraceFormatError extends MirrorlabError {
  constructor(readonly path: string, readonly line: number, problem: string) {
    super('ML_ERR_TRACE_FORMAT', `${path}${line > 0 ? ` line ${line}` : ''}: ${problem}`);
  }
}

/** The visualizer's server could not start (its port is taken, or not allowed). */
export class VizServerError extends MirrorlabError {
  constructor(message: string) {
    super('ML_ERR_VIZ_SERVER', message);
  }
}
