import type { Logger } from 'pino';
import type { GatewayConfig } from '../config';

export interface VerificationMessage {
  wa_id: string;
  code: string;
  session_id: string;
  expires_at: string;
}

/** How a verification code reaches the phone: pluggable (an SMS provider behind an HTTP hook). */
export interface VerificationSender {
  /** Whether the API may echo the code to the caller (only the development log sender in demo mode). */
  readonly echoesCode: boolean;
  send(message: VerificationMessage): Promise<void>;
}

export const VERIFICATION_SENDER = Symbol('VERIFICATION_SENDER');

export class VerificationSendError extends Error {
  override readonly name = 'VerificationSendError';
}

/** Development: writes the code to the log (refused in production unless DEMO_MODE, see config). */
export class LogVerificationSender implements VerificationSender {
  constructor(
    private readonly log: Logger,
    readonly echoesCode: boolean,
  ) {}
  async send(m: VerificationMessage): Promise<void> {
    this.log.warn(
      { wa_id: m.wa_id, session_id: m.session_id, code: m.code },
      'verification code (dev sender)',
    );
  }
}

/** POSTs the code as JSON to a configured URL (the SMS provider adapter); any non-2xx is a failure. */
export class HttpHookVerificationSender implements VerificationSender {
  readonly echoesCode = false;
  constructor(
    private readonly url: string,
    private readonly token: string | undefined,
    private readonly timeoutMs = 5000,
  ) {}
  async send(m: VerificationMessage): Promise<void> {
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        body: JSON.stringify(m),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new VerificationSendError(`verification hook unreachable: ${(err as Error).message}`);
    }
    await res.body?.cancel();
    if (!res.ok) throw new VerificationSendError(`verification hook answered ${res.status}`);
  }
}

export function verificationSenderFor(config: GatewayConfig, log: Logger): VerificationSender {
  if (config.VERIFICATION_SENDER === 'http' && config.VERIFICATION_HOOK_URL) {
    return new HttpHookVerificationSender(config.VERIFICATION_HOOK_URL, config.VERIFICATION_HOOK_TOKEN);
  }
  return new LogVerificationSender(log, config.DEMO_MODE);
}
