import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import { DEVICE_CLOSE_CODES, type ServerFrame } from '@relay/protocol';
import type { AuthenticatedDevice } from '../auth/device-auth.service';
import { takeTokens, type BucketSpec, type BucketState } from '../ratelimit/token-bucket';

/**
 * One device's live WebSocket. Sending is bounded: when the socket's unsent bytes pass the limit the
 * connection is closed (4008) rather than buffering without end; the device reconnects and its
 * backlog is drained from storage again.
 */
export class DeviceConnection {
  readonly id = randomUUID();
  alive = true;
  private frames?: BucketState;
  private chain: Promise<void> = Promise.resolve();
  private closeHandlers: (() => void)[] = [];

  constructor(
    readonly device: AuthenticatedDevice,
    /** Its place in the device's connect order, across replicas (see ConnectionRegistry). */
    readonly epoch: number,
    private readonly ws: WebSocket,
    private readonly maxBufferedBytes: number,
    private readonly frameLimit: BucketSpec,
  ) {
    ws.on('pong', () => (this.alive = true));
    ws.once('close', () => {
      for (const h of this.closeHandlers) h();
      this.closeHandlers = [];
    });
  }

  get key(): string {
    return deviceKey(this.device.waId, this.device.deviceId);
  }

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  onClose(handler: () => void): void {
    this.closeHandlers.push(handler);
  }

  send(frame: ServerFrame): boolean {
    if (!this.open) return false;
    const data = JSON.stringify(frame);
    if (this.ws.bufferedAmount + data.length > this.maxBufferedBytes) {
      this.close(DEVICE_CLOSE_CODES.SLOW_CONSUMER, 'send queue full');
      return false;
    }
    this.ws.send(data);
    return true;
  }

  /** Local per-connection frame budget; returns the wait when exhausted. */
  takeFrameToken(now: number): number | undefined {
    const r = takeTokens(this.frameLimit, this.frames, now);
    this.frames = r.state;
    return r.allowed ? undefined : r.retryAfterMs;
  }

  /** Runs frame handlers one after another, so a device's frames take effect in the order sent. */
  enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task, task);
  }

  ping(): void {
    if (!this.alive) {
      this.ws.terminate();
      return;
    }
    this.alive = false;
    if (this.open) this.ws.ping();
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState === this.ws.CLOSED || this.ws.readyState === this.ws.CLOSING) return;
    this.ws.close(code, reason);
    // A peer that never answers the close handshake must not hold the socket.
    setTimeout(() => this.ws.terminate(), 5000).unref();
  }
}

export const deviceKey = (waId: string, deviceId: number) => `${waId}.${deviceId}`;
