import { asciiJson } from './webhook-body';

/**
 * Joins stored webhook bodies into one POST body the way Meta batches updates: one envelope whose
 * `entry` array holds every body's entries, in the given order. A single body is sent byte for byte
 * as stored. Returns the joined body and how many bodies it holds: as many as fit under `maxBytes`,
 * and always at least the first (the caller reports an oversized first body itself).
 */
export function joinBodies(bodies: Buffer[], maxBytes: number): { body: Buffer; count: number } {
  if (bodies.length <= 1) return { body: bodies[0] ?? Buffer.alloc(0), count: bodies.length };
  const head = '{"object":"whatsapp_business_account","entry":[';
  const parts: Buffer[] = [];
  let size = head.length + 2;
  for (const b of bodies) {
    const parsed = JSON.parse(b.toString('utf8')) as { entry?: unknown[] };
    const json = asciiJson(parsed.entry ?? []);
    const entries = json.subarray(1, json.length - 1);
    const add = entries.length + (parts.length ? 1 : 0);
    if (parts.length > 0 && size + add > maxBytes) break;
    size += add;
    parts.push(entries);
  }
  const body = Buffer.concat([
    Buffer.from(head, 'ascii'),
    ...parts.flatMap((p, i) => (i ? [Buffer.from(',', 'ascii'), p] : [p])),
    Buffer.from(']}', 'ascii'),
  ]);
  return { body, count: parts.length };
}
