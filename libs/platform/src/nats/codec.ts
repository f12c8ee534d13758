const enc = new TextEncoder();
const dec = new TextDecoder();

export const encodeJson = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));

/** Decodes JSON, returning a marker instead of throwing so callers handle bad bytes as bad input. */
export function decodeJson(data: Uint8Array): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(dec.decode(data)) };
  } catch (err) {
    return { ok: false, error: `malformed JSON: ${(err as Error).message}` };
  }
}
