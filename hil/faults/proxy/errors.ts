import { MirrorlabError } from '../../../firmware/errors.ts';

/**
 * Operating errors of the fault proxy (docs/conventions.md 5): a bad address, a port in use, a
 * serial path that cannot be opened, a plan that cannot apply to this kind of link. The CLI
 * prints them in one line and exits with status 2.
 */
export type ProxyErrorCode =
  | 'ML_ERR_PROXY_ADDRESS'
  | 'ML_ERR_PROXY_LISTEN'
  | 'ML_ERR_PROXY_PLAN'
  | 'ML_ERR_PROXY_SERIAL'
  | 'ML_ERR_PROXY_EVENTS';

export class ProxyError extends MirrorlabError {
  declare readonly code: ProxyErrorCode;

  constructor(code: ProxyErrorCode, message: string) {
    super(code, message);
  }
}
