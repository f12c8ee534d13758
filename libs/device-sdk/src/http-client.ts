import type { z } from 'zod';
import { DeviceHttpError } from '@relay/protocol';
import { DeviceApiError } from './errors';

export interface Credentials {
  waId: string;
  deviceId: number;
  password: string;
}

export const basicAuth = (c: Credentials): string =>
  `Basic ${Buffer.from(`${c.waId}.${c.deviceId}:${c.password}`).toString('base64')}`;

/** The device HTTP API: JSON in and out, every refusal a DeviceApiError with the documented code. */
export class DeviceHttpClient {
  constructor(
    readonly baseUrl: string,
    private readonly credentials?: () => Credentials | undefined,
    private readonly timeoutMs = 15_000,
  ) {}

  async call<S extends z.ZodType>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    schema: S | null,
    body?: unknown,
  ): Promise<z.infer<S>> {
    const creds = this.credentials?.();
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(creds ? { authorization: basicAuth(creds) } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new DeviceApiError(0, 'network', `cannot reach ${this.baseUrl}: ${(err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) {
      const parsed = DeviceHttpError.safeParse(safeJson(text));
      if (parsed.success) {
        const e = parsed.data.error;
        throw new DeviceApiError(res.status, e.code, e.message, e.retry_after_ms);
      }
      throw new DeviceApiError(res.status, 'internal', `HTTP ${res.status}`);
    }
    if (!schema) return undefined as z.infer<S>;
    const r = schema.safeParse(safeJson(text));
    if (!r.success) throw new DeviceApiError(res.status, 'internal', `unexpected response from ${path}`);
    return r.data;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
