/** Seeded generators of malformed device input, each with the documented error it must get. */
import { randomBytes } from 'node:crypto';

export type Rng = () => number;

/** mulberry32: a small deterministic PRNG, so a failing case can be replayed from its seed. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const junk = (r: Rng, n = 1 + Math.floor(r() * 40)) =>
  Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(r() * 95))).join('');

export interface FrameCase {
  data: string | Buffer;
  code: string;
  /** The id the error frame must carry (null when the frame had no readable id). */
  id: string | null;
}

const WAMID = 'wamid.AAAAAAAAAAAAAAAA';
const goodSend = (id: string) => ({
  type: 'send',
  id,
  to: '1500000004',
  ciphertext_type: 'whisper',
  ciphertext: randomBytes(30).toString('base64'),
});

/** One malformed WebSocket frame. */
export function frameCase(r: Rng, n: number): FrameCase {
  const id = `fz${n}`;
  const kind = Math.floor(r() * 12);
  switch (kind) {
    case 0:
      return { data: `{${junk(r)}`, code: 'malformed_frame', id: null };
    case 1:
      return {
        data: JSON.stringify(pick(r, [[1, 2], 42, 'text', null, true, []])),
        code: 'malformed_frame',
        id: null,
      };
    case 2:
      return { data: Buffer.from(junk(r)), code: 'binary_not_supported', id: null };
    case 3:
      return {
        data: JSON.stringify({ type: pick(r, ['sned', 'SEND', 'ping', '', 7]), id }),
        code: 'unknown_type',
        id,
      };
    case 4:
      return { data: JSON.stringify({ id }), code: 'unknown_type', id };
    case 5: {
      const f = { ...goodSend(id), ciphertext: pick(r, ['***', 'abc', '====', 'YQ=', junk(r)]) };
      return { data: JSON.stringify(f), code: 'invalid_frame', id };
    }
    case 6: {
      const field = pick(r, ['to', 'ciphertext_type', 'ciphertext'] as const);
      const f: Record<string, unknown> = { ...goodSend(id) };
      f[field] = pick(r, [null, 12, 'a.b', '*', {}, [], '1'.repeat(40), 'prekey2']);
      return { data: JSON.stringify(f), code: 'invalid_frame', id };
    }
    case 7: {
      // Envelope ids must be 8-64 url-safe chars: a short or dotted one is invalid, the id still echoed.
      const bad = pick(r, ['short', 'has.dot.in.it', 'white space id', '*'.repeat(10)]);
      return { data: JSON.stringify(goodSend(bad)), code: 'invalid_frame', id: bad };
    }
    case 8:
      return { data: JSON.stringify({ ...goodSend(id), extra: junk(r) }), code: 'invalid_frame', id };
    case 9:
      return {
        data: JSON.stringify({
          type: 'ack',
          id,
          wamids: pick(r, [[], ['nope'], [WAMID, 5], 'x', Array(101).fill(WAMID)]),
        }),
        code: 'invalid_frame',
        id,
      };
    case 10:
      return {
        data: JSON.stringify({
          type: 'receipt',
          id,
          status: pick(r, ['delivered', 'READ', 1]),
          phone_number_id: '1',
          wamids: [WAMID],
        }),
        code: 'invalid_frame',
        id,
      };
    default: {
      const longId = 'x'.repeat(65 + Math.floor(r() * 10));
      const frameId = pick(r, [id, longId]);
      return {
        data: JSON.stringify({
          type: 'report',
          id: frameId,
          phone_number_id: '1',
          kind: pick(r, ['spam', '', 3]),
        }),
        code: 'invalid_frame',
        id: frameId === id ? id : null,
      };
    }
  }
}

export interface HttpCase {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  status: number;
  code: string;
}

/** One malformed HTTP request; `auth` is a valid device's Basic header, `other` another user's. */
export function httpCase(r: Rng, auth: string, otherDeviceOfOtherUser: string): HttpCase {
  const json = { 'content-type': 'application/json' };
  const kind = Math.floor(r() * 10);
  switch (kind) {
    case 0:
      return {
        method: 'POST',
        path: '/v1/verification/sessions',
        headers: json,
        body: `{${junk(r)}`,
        status: 400,
        code: 'invalid_request',
      };
    case 1:
      return {
        method: 'POST',
        path: '/v1/verification/sessions',
        headers: json,
        body: JSON.stringify({ wa_id: pick(r, ['+491', '12', 'abc', 5, null, '1'.repeat(20)]) }),
        status: 400,
        code: 'invalid_request',
      };
    case 2: {
      const session = pick(r, ['not-a-uuid', '00000000-0000-4000-8000-000000000000']);
      const code = pick(r, ['123456', '12', 'abcdef']);
      const valid = session !== 'not-a-uuid' && code === '123456';
      return {
        method: 'POST',
        path: `/v1/verification/sessions/${session}/code`,
        headers: json,
        body: JSON.stringify({ code }),
        status: valid ? 404 : 400,
        code: valid ? 'not_found' : 'invalid_request',
      };
    }
    case 3:
      return {
        method: 'PUT',
        path: '/v1/keys',
        headers: { ...json, authorization: auth },
        body: JSON.stringify({
          prekeys: [{ id: pick(r, [0, -1, 2 ** 25, 'a']), public_key: pick(r, ['***', 'AAAA']) }],
        }),
        status: 400,
        code: 'invalid_request',
      };
    case 4:
      return {
        method: 'GET',
        path: '/v1/keys/count',
        headers: {
          authorization: pick(r, [
            'Basic ' + junk(r),
            'Bearer x',
            'Basic ' + Buffer.from(junk(r)).toString('base64'),
            '',
          ]),
        },
        status: 401,
        code: 'unauthorized',
      };
    case 5:
      return {
        method: 'GET',
        path: '/v1/keys/count',
        headers: { authorization: otherDeviceOfOtherUser },
        status: 401,
        code: 'unauthorized',
      };
    case 6:
      return {
        method: 'GET',
        path: `/v1/businesses/${pick(r, ['abc', '1.2', '%2A', '-1'])}/bundle`,
        headers: { authorization: auth },
        status: 400,
        code: 'invalid_request',
      };
    case 7:
      return {
        method: 'DELETE',
        path: `/v1/devices/${pick(r, ['0', '128', 'x', '999'])}`,
        headers: { authorization: auth },
        status: 400,
        code: 'invalid_request',
      };
    case 8:
      return {
        method: 'GET',
        path: `/v1/${junk(r, 8).replace(/[^a-z]/gi, 'z')}`,
        headers: {},
        status: 404,
        code: 'not_found',
      };
    default:
      return {
        method: 'PUT',
        path: '/v1/keys',
        headers: { ...json, authorization: auth },
        body: JSON.stringify({ prekeys: 'x'.repeat(600 * 1024) }),
        status: 413,
        code: 'payload_too_large',
      };
  }
}
