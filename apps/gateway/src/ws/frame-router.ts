import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { APP_LOGGER, CLOCK, type Clock } from '@relay/platform';
import { CLIENT_FRAME_TYPES, ClientFrame, type ErrorFrame, type FrameErrorCode } from '@relay/protocol';
import { GatewayError } from '../http/gateway-error';
import { InboundService } from '../delivery/inbound.service';
import { DeliveryService } from '../delivery/delivery.service';
import { AbuseService } from '../abuse/abuse.service';
import type { DeviceConnection } from './device-connection';

type Parsed = { ok: true; frame: ClientFrame } | { ok: false; error: ErrorFrame };

const err = (
  id: string | null,
  code: FrameErrorCode,
  message: string,
  retryAfterMs?: number,
): ErrorFrame => ({
  type: 'error',
  id,
  code,
  message,
  ...(retryAfterMs !== undefined ? { retry_after_ms: retryAfterMs } : {}),
});

/** Reads a text frame into a typed client frame, or the documented error for it. */
export function parseClientFrame(data: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return { ok: false, error: err(null, 'malformed_frame', 'frame is not valid JSON') };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: err(null, 'malformed_frame', 'frame must be a JSON object') };
  }
  const rawId = (value as { id?: unknown }).id;
  const id = typeof rawId === 'string' && rawId.length <= 64 ? rawId : null;
  const type = (value as { type?: unknown }).type;
  if (!(CLIENT_FRAME_TYPES as readonly unknown[]).includes(type)) {
    return {
      ok: false,
      error: err(id, 'unknown_type', `unknown frame type; expected one of ${CLIENT_FRAME_TYPES.join(', ')}`),
    };
  }
  const r = ClientFrame.safeParse(value);
  if (!r.success) {
    const detail = r.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.join('.') || 'frame'}: ${i.message}`)
      .join('; ');
    return { ok: false, error: err(id, 'invalid_frame', detail) };
  }
  return { ok: true, frame: r.data };
}

function errorFrameFor(id: string, e: unknown): ErrorFrame {
  if (e instanceof GatewayError) {
    if (e.code === 'rate_limited') return err(id, 'rate_limited', e.message, e.retryAfterMs);
    if (e.code === 'unavailable') return err(id, 'unavailable', e.message);
    if (e.code === 'invalid_request') return err(id, 'invalid_frame', e.message);
  }
  return err(id, 'internal', 'internal error');
}

/** Dispatches a device's frames; every frame with an id gets exactly one result or error frame. */
@Injectable()
export class FrameRouter {
  constructor(
    @Inject(InboundService) private readonly inbound: InboundService,
    @Inject(DeliveryService) private readonly delivery: DeliveryService,
    @Inject(AbuseService) private readonly abuse: AbuseService,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(APP_LOGGER) private readonly log: Logger,
  ) {}

  handle(conn: DeviceConnection, data: string): void {
    conn.alive = true;
    // Budget first: a flood of garbage costs one token check per frame, not a parse.
    const wait = conn.takeFrameToken(this.clock.now().getTime());
    if (wait !== undefined) {
      conn.send(err(null, 'rate_limited', 'too many frames on this connection', wait));
      return;
    }
    const parsed = parseClientFrame(data);
    if (!parsed.ok) {
      conn.send(parsed.error);
      return;
    }
    const frame = parsed.frame;
    const run = async () => {
      try {
        const duplicate = await this.dispatch(conn, frame);
        conn.send({ type: 'result', id: frame.id, ...(duplicate ? { duplicate: true } : {}) });
      } catch (e) {
        if (!(e instanceof GatewayError)) {
          this.log.error({ err: (e as Error).message, type: frame.type }, 'frame handler failed');
        }
        conn.send(errorFrameFor(frame.id, e));
      }
    };
    // Acks are independent of other frames and coalesced per connection, so they skip the queue.
    if (frame.type === 'ack') void run();
    else conn.enqueue(run);
  }

  private async dispatch(conn: DeviceConnection, frame: ClientFrame): Promise<boolean> {
    switch (frame.type) {
      case 'send':
        return (await this.inbound.send(conn.device, frame)).duplicate;
      case 'ack':
        await this.delivery.ack(conn, frame);
        return false;
      case 'receipt':
        await this.delivery.read(conn, frame);
        return false;
      case 'report':
        await this.abuse.report(conn.device, frame);
        return false;
    }
  }
}
