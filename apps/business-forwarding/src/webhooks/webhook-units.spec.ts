import { createHmac } from 'node:crypto';
import { CloudApiError } from '../common/errors';
import { normalizePhone } from '../common/ids';
import { parseSend } from '../cloud-api/message-validation';
import { QualityService } from '../limits/quality.service';
import type { BusinessForwardingConfig } from '../config';
import type { LimitsRepository } from '../limits/limits.repository';
import { systemClock } from '@relay/platform';
import { backoffMs } from './backoff';
import { statusesToEmit } from './status-sequence';
import { asciiJson } from './webhook-body';
import { joinBodies } from './webhook-batch';

describe('asciiJson', () => {
  it('escapes every non-ASCII unit, round-trips, and signs the exact bytes', () => {
    const value = { t: 'äöå — 你好 👋 \u007f', n: 1 };
    const bytes = asciiJson(value);
    expect([...bytes].every((b) => b < 0x80)).toBe(true);
    expect(bytes.toString('ascii')).toBe(
      '{"t":"\\u00e4\\u00f6\\u00e5 \\u2014 \\u4f60\\u597d \\ud83d\\udc4b \\u007f","n":1}',
    );
    expect(JSON.parse(bytes.toString('utf8'))).toEqual(value);
    // A receiver that hashes the raw bytes gets the same HMAC as the sender.
    const sig = createHmac('sha256', 's').update(bytes).digest('hex');
    expect(
      createHmac('sha256', 's')
        .update(Buffer.from(bytes.toString('latin1'), 'latin1'))
        .digest('hex'),
    ).toBe(sig);
  });
});

describe('statusesToEmit', () => {
  it.each([
    [null, 'sent', ['sent']],
    [null, 'delivered', ['sent', 'delivered']],
    [null, 'read', ['sent', 'read']],
    [null, 'failed', ['failed']],
    ['sent', 'delivered', ['delivered']],
    ['sent', 'sent', []],
    ['delivered', 'sent', []],
    ['read', 'delivered', []],
    ['delivered', 'read', ['read']],
    ['sent', 'failed', ['failed']],
    ['delivered', 'failed', []],
    ['failed', 'read', []],
  ] as const)('after %s, %s emits %j', (last, incoming, expected) => {
    expect(statusesToEmit(last, incoming)).toEqual(expected);
  });
});

describe('backoffMs', () => {
  it('doubles per attempt with jitter in [50%, 100%] and respects the cap', () => {
    expect(backoffMs(1, 1000, 60_000, () => 1)).toBe(1000);
    expect(backoffMs(1, 1000, 60_000, () => 0)).toBe(500);
    expect(backoffMs(4, 1000, 60_000, () => 1)).toBe(8000);
    expect(backoffMs(40, 1000, 60_000, () => 1)).toBe(60_000);
    expect(backoffMs(1000, 1000, 60_000, () => 0.5)).toBe(45_000);
  });
});

describe('parseSend', () => {
  const code = (body: unknown) => {
    try {
      parseSend(body);
      return 'ok';
    } catch (e) {
      return (e as CloudApiError).code;
    }
  };
  const base = { messaging_product: 'whatsapp', to: '+1 (650) 555-1234' };
  it.each([
    [[], 100],
    [{ to: '16505551234' }, 131008],
    [{ ...base, messaging_product: 'sms' }, 131009],
    [{ messaging_product: 'whatsapp', text: { body: 'x' } }, 131008],
    [{ ...base, to: 16505551234 }, 100],
    [{ ...base, to: '0123' }, 131009],
    [{ ...base, recipient_type: 'group', text: { body: 'x' } }, 131009],
    [{ ...base, text: { body: 'x' } }, 'ok'],
    [{ ...base, type: 'text' }, 131008],
    [{ ...base, text: { body: 1 } }, 100],
    [{ ...base, text: { body: 'x', preview_url: 'yes' } }, 100],
    [{ ...base, type: 'video', video: {} }, 131051],
    [{ ...base, type: 'sms' }, 100],
    [{ ...base, type: 'reaction', reaction: { message_id: 'wamid.ABCDEFGHIJ', emoji: '👍' } }, 'ok'],
    [{ ...base, type: 'reaction', reaction: { emoji: '👍' } }, 131008],
    [{ ...base, type: 'reaction', reaction: { message_id: 'x', emoji: '👍' } }, 131009],
    [
      {
        ...base,
        type: 'reaction',
        reaction: { message_id: 'wamid.ABCDEFGHIJ', emoji: '👍👍👍👍👍👍👍👍👍' },
      },
      131009,
    ],
    [{ ...base, type: 'reaction', context: { message_id: 'wamid.ABCDEFGHIJ' }, reaction: {} }, 100],
    [{ ...base, text: { body: 'x' }, biz_opaque_callback_data: 'y'.repeat(513) }, 100],
    [{ messaging_product: 'whatsapp', status: 'read' }, 131008],
    [{ messaging_product: 'whatsapp', status: 'delivered', message_id: 'wamid.ABCDEFGHIJ' }, 100],
    [
      {
        messaging_product: 'whatsapp',
        status: 'read',
        message_id: 'wamid.ABCDEFGHIJ',
        typing_indicator: { type: 'x' },
      },
      131009,
    ],
  ])('%j -> %s', (body, expected) => {
    expect(code(body)).toBe(expected);
  });

  it('normalizes recipients without guessing a country code', () => {
    expect(normalizePhone('+1 (650) 555-1234')).toBe('16505551234');
    expect(normalizePhone('650-555')).toBeUndefined();
    expect(normalizePhone('++49 151 2345678')).toBe('491512345678');
  });
});

describe('QualityService.effectiveLimit', () => {
  // Pure arithmetic: no repository call is made, so an empty stand-in is enough.
  const q = new QualityService({} as BusinessForwardingConfig, systemClock, {} as LimitsRepository);
  it('lowers the tier one step for YELLOW and two for RED, 250 being the floor', () => {
    expect(q.effectiveLimit(10_000, 'GREEN')).toBe(10_000);
    expect(q.effectiveLimit(10_000, 'YELLOW')).toBe(2000);
    expect(q.effectiveLimit(10_000, 'RED')).toBe(250);
    expect(q.effectiveLimit(0, 'YELLOW')).toBe(100_000);
    expect(q.effectiveLimit(0, 'RED')).toBe(10_000);
    expect(q.effectiveLimit(250, 'RED')).toBe(250);
    expect(q.effectiveLimit(40, 'RED')).toBe(10);
  });
});

describe('joinBodies', () => {
  const body = (id: string, text: string) =>
    asciiJson({
      object: 'whatsapp_business_account',
      entry: [{ id, changes: [{ field: 'messages', value: { messages: [{ text: { body: text } }] } }] }],
    });

  it('sends a single body byte for byte and joins several into one entry array, in order', () => {
    const one = body('1', 'héllo');
    expect(joinBodies([one], 3_000_000)).toEqual({ body: one, count: 1 });
    const { body: joined, count } = joinBodies([one, body('2', 'b'), body('3', 'c')], 3_000_000);
    expect(count).toBe(3);
    const parsed = JSON.parse(joined.toString('ascii'));
    expect(parsed.object).toBe('whatsapp_business_account');
    expect(parsed.entry.map((e: { id: string }) => e.id)).toEqual(['1', '2', '3']);
    expect(parsed.entry[0].changes[0].value.messages[0].text.body).toBe('héllo');
    // Same escaping as a stored body: ASCII only.
    expect(/^[\x20-\x7e]*$/.test(joined.toString('latin1'))).toBe(true);
  });

  it('stops before the body cap, keeping at least the first body', () => {
    const bodies = ['a', 'b', 'c'].map((x) => body(x, x.repeat(400)));
    const two = joinBodies(bodies, bodies[0].length * 2);
    expect(two.count).toBe(2);
    expect(two.body.length).toBeLessThanOrEqual(bodies[0].length * 2);
    expect(joinBodies(bodies, bodies[0].length + 10).count).toBe(1);
    expect(joinBodies(bodies, 10).count).toBe(1);
  });
});
