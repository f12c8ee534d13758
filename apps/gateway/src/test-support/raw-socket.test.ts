/** A bare WebSocket client speaking the device protocol by hand (no SDK), for protocol-level tests. */
import WebSocket from 'ws';
import { waitFor } from '@relay/testing';
import type { MemoryStateStore } from '@relay/device-sdk';

export interface RawFrame {
  type: string;
  id?: string | null;
  code?: string;
  wamid?: string;
  duplicate?: boolean;
  [k: string]: unknown;
}

export class RawSocket {
  readonly frames: RawFrame[] = [];
  closeCode?: number;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => this.frames.push(JSON.parse(d.toString()) as RawFrame));
    ws.on('close', (code) => (this.closeCode = code));
    ws.on('error', () => undefined);
  }

  static open(baseUrl: string, authorization?: string): Promise<RawSocket> {
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/v1/websocket`, {
      headers: authorization ? { authorization } : {},
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawSocket(ws)));
      ws.once('unexpected-response', (_req, res) =>
        reject(Object.assign(new Error('refused'), { status: res.statusCode })),
      );
      ws.once('error', reject);
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  async next(pred: (f: RawFrame) => boolean, timeoutMs = 10_000): Promise<RawFrame> {
    const f = await waitFor(() => this.frames.find(pred), timeoutMs, 10);
    if (!f) throw new Error('no frame');
    return f;
  }

  messages(): RawFrame[] {
    return this.frames.filter((f) => f.type === 'message');
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((r) => {
      this.ws.once('close', () => r());
      this.ws.close(1000);
    });
  }
}

/** The Basic credentials a device registered into a memory store. */
export function authOf(store: MemoryStateStore): string {
  const json = (store as unknown as { json?: string }).json ?? '{}';
  const st = JSON.parse(json) as { wa_id: string; device_id: number; password: string };
  return `Basic ${Buffer.from(`${st.wa_id}.${st.device_id}:${st.password}`).toString('base64')}`;
}
