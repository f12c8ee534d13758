import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { DEVICE_CLOSE_CODES, ServerFrame, type ClientFrame } from '@relay/protocol';

export interface SocketEvents {
  open: [];
  frame: [ServerFrame];
  close: [code: number, reason: string];
  /** The server closed for good (replaced by another connection, or the device was removed). */
  terminal: [code: number, reason: string];
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

/** Closes after which reconnecting would be wrong: another connection took over, or no device. */
const TERMINAL = new Set<number>([DEVICE_CLOSE_CODES.CONNECTED_ELSEWHERE, DEVICE_CLOSE_CODES.DEVICE_REMOVED]);

/**
 * The device's WebSocket with reconnect: exponential backoff with full jitter, reset after a
 * connection that lasted. Unknown server frames are ignored (forward compatibility).
 */
export class ReconnectingSocket extends EventEmitter<SocketEvents> {
  private ws?: WebSocket;
  private attempts = 0;
  private stopped = false;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly url: string,
    private readonly authorization: () => string,
    private readonly backoff: BackoffOptions = { initialMs: 250, maxMs: 30_000 },
  ) {
    super();
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  send(frame: ClientFrame): boolean {
    if (!this.connected || !this.ws) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close(DEVICE_CLOSE_CODES.NORMAL, 'client closing');
      setTimeout(() => {
        ws.terminate();
        resolve();
      }, 2000).unref();
    });
  }

  private open(): void {
    const ws = new WebSocket(this.url, { headers: { authorization: this.authorization() } });
    this.ws = ws;
    let openedAt = 0;
    ws.on('open', () => {
      openedAt = Date.now();
      this.emit('open');
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let value: unknown;
      try {
        value = JSON.parse(data.toString());
      } catch {
        return;
      }
      const r = ServerFrame.safeParse(value);
      if (r.success) this.emit('frame', r.data);
    });
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (req, res) => {
      req.destroy();
      // Bad credentials will not get better by retrying.
      if (res.statusCode === 401) {
        this.stopped = true;
        this.emit('terminal', 4401, 'unauthorized');
      }
    });
    ws.on('close', (code, reasonBuf) => {
      const reason = reasonBuf.toString();
      if (this.ws === ws) this.ws = undefined;
      this.emit('close', code, reason);
      if (TERMINAL.has(code)) {
        this.stopped = true;
        this.emit('terminal', code, reason);
        return;
      }
      if (this.stopped) return;
      if (openedAt && Date.now() - openedAt > 10_000) this.attempts = 0;
      const cap = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** this.attempts);
      this.attempts++;
      this.timer = setTimeout(() => this.open(), Math.random() * cap);
    });
  }
}
