import { MirrorlabError } from '../../firmware/errors.ts';

/** The rack could not be run (a port taken, socat missing, a controller that did not start): exit 2, one line. */
export class RackError extends MirrorlabError {}
