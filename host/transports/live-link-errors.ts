import { MirrorlabError } from '../../firmware/errors.ts';

/**
 * A live link cannot be opened as asked (docs/live-links.md 7): a bad spec, an address in use or
 * not on this machine, a serial port or USB device that is absent, busy or not ours to open. Raised by
 * `parseLiveLinkSpec` and `openLiveLink` before anything is sent: an operating error, so a command
 * prints its one line and exits 2. The message names what was wrong and what would work.
 *
 * What goes wrong after a link is open (a reset, a refused connection, a port that disappears) is
 * never thrown: it reaches the firmware as `closed(conn, reason)`.
 */
export type LiveLinkErrorCode =
  | 'ML_ERR_LINK_SPEC'
  | 'ML_ERR_LINK_ADDRESS_IN_USE'
  | 'ML_ERR_LINK_ADDRESS'
  | 'ML_ERR_LINK_PERMISSION'
  | 'ML_ERR_LINK_SERIAL_PORT'
  | 'ML_ERR_LINK_SERIAL_IN_USE'
  | 'ML_ERR_LINK_USB_NOT_FOUND'
  | 'ML_ERR_LINK_USB_AMBIGUOUS'
  | 'ML_ERR_LINK_USB_INTERFACE'
  | 'ML_ERR_LINK_USB_IN_USE'
  | 'ML_ERR_LINK_USB_UNAVAILABLE';

export class LiveLinkError extends MirrorlabError {
  declare readonly code: LiveLinkErrorCode;

  constructor(code: LiveLinkErrorCode, message: string, cause?: unknown) {
    super(code, message);
    if (cause !== undefined) this.cause = cause;
  }
}

/** The `code` of a Node system error (`EADDRINUSE`, `ECONNRESET`, ...), or ''. */
export function errnoCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}
