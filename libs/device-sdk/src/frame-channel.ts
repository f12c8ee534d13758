import { EventEmitter } from 'node:events';
import type { ClientFrame, ServerFrame } from '@relay/protocol';
import { FrameError } from './errors';
import { ReconnectingSocket } from './socket';

export interface ChannelEvents {
  /** Server frames other than result/error (message, queue_empty, failure). */
  frame: [Exclude<ServerFrame, { type: 'result' | 'error' }>];
  open: [];
  close: [code: number, reason: string];
  terminal: [code: number, reason: string];
}

interface Pending {
  frame: ClientFrame;
  resolve: (r: { duplicate: boolean }) => void;
  reject: (e: Error) => void;
}

/**
 * Request/response over the device WebSocket: each request frame waits for its result or error frame,
 * and frames still unanswered when the connection drops are sent again after the reconnect (the
 * gateway makes that safe: envelope ids dedupe, acks and receipts are idempotent).
 */
export class FrameChannel extends EventEmitter<ChannelEvents> {
  private readonly pending = new Map<string, Pending>();
  private readonly socket: ReconnectingSocket;

  constructor(url: string, authorization: () => string) {
    super();
    this.socket = new ReconnectingSocket(url, authorization);
    this.socket.on('open', () => {
      for (const p of this.pending.values()) this.socket.send(p.frame);
      this.emit('open');
    });
    this.socket.on('close', (code, reason) => this.emit('close', code, reason));
    this.socket.on('terminal', (code, reason) => {
      for (const p of this.pending.values())
        p.reject(new FrameError('unavailable', `connection closed (${code})`));
      this.pending.clear();
      this.emit('terminal', code, reason);
    });
    this.socket.on('frame', (f) => {
      if (f.type !== 'result' && f.type !== 'error') {
        this.emit('frame', f);
        return;
      }
      const p = f.id ? this.pending.get(f.id) : undefined;
      if (!p || !f.id) return;
      this.pending.delete(f.id);
      if (f.type === 'result') p.resolve({ duplicate: f.duplicate === true });
      else p.reject(new FrameError(f.code, f.message, f.retry_after_ms));
    });
  }

  /** Resolves once connected the first time. */
  start(): Promise<void> {
    return new Promise((resolve) => {
      this.socket.once('open', () => resolve());
      this.socket.start();
    });
  }

  request(frame: ClientFrame): Promise<{ duplicate: boolean }> {
    return new Promise((resolve, reject) => {
      this.pending.set(frame.id, { frame, resolve, reject });
      this.socket.send(frame);
    });
  }

  stop(): Promise<void> {
    return this.socket.stop();
  }
}
