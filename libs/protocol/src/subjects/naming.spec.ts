import { EVENTS, NOTIFICATIONS, RPCS } from './map';
import { STREAMS } from './streams';
import {
  eventFilter,
  eventSubject,
  notifySubject,
  parseEventSubject,
  rpcSubject,
  streamName,
  streamSubjects,
} from './naming';
import { DeviceEnvelope, InboundMessage, OutboundRequest } from '../schemas';
import { parsePayload, ProtocolValidationError } from '../errors';
import { cloudApiErrorBody, CLOUD_API_ERRORS } from '../cloud-api-errors';

describe('subject naming', () => {
  it('builds versioned subjects from the typed map and reads tokens back', () => {
    const session = { phone_number_id: '106540352242922', wa_id: '4915112345678', device_id: '2' };
    const s = eventSubject('relay', 'device.envelope', session);
    expect(s).toBe('relay.v1.device.envelope.106540352242922.4915112345678.2');
    expect(parseEventSubject('relay', 'device.envelope', s)).toEqual(session);
    expect(eventFilter('relay', 'device.envelope', '106540352242922')).toBe(
      'relay.v1.device.envelope.106540352242922.*.*',
    );
    expect(eventSubject('relay', 'delivery.ciphertext', { wa_id: '4915112345678', device_id: 2 })).toBe(
      'relay.v1.delivery.ciphertext.4915112345678.2',
    );
    expect(rpcSubject('relay', 'crypto.business_bundle')).toBe('relay.v1.rpc.crypto.business_bundle');
    expect(notifySubject('relay', 'device.pending', { wa_id: '4915112345678', device_id: 1 })).toBe(
      'relay.v1.notify.device.pending.4915112345678.1',
    );
  });

  it('refuses tokens that would change what a subject matches, and bad roots', () => {
    for (const bad of ['1.2', '*', '>', '', 'a b', 'x'.repeat(65)]) {
      expect(() => eventSubject('relay', 'inbound.message', { phone_number_id: bad })).toThrow(
        /invalid subject token/,
      );
    }
    expect(() => eventSubject('Relay', 'inbound.message', { phone_number_id: '1' })).toThrow(
      /invalid NATS subject root/,
    );
    expect(() => parseEventSubject('relay', 'inbound.message', 'relay.v1.inbound.message.1.2')).toThrow(
      /token count/,
    );
  });

  it('filters per tenant or across tenants', () => {
    expect(eventFilter('relay', 'delivery.ciphertext')).toBe('relay.v1.delivery.ciphertext.*.*');
    expect(eventFilter('relay', 'delivery.ciphertext', '4915112345678')).toBe(
      'relay.v1.delivery.ciphertext.4915112345678.*',
    );
  });

  it('puts every event in a stream whose subjects capture it, and no subject in two streams', () => {
    for (const [name, def] of Object.entries(EVENTS)) {
      const captured = STREAMS[def.stream].prefixes.some((p) => name.startsWith(`${p}.`));
      expect({ name, captured }).toEqual({ name, captured: true });
    }
    const all = Object.keys(STREAMS).flatMap((k) => streamSubjects('relay', k as keyof typeof STREAMS));
    expect(new Set(all).size).toBe(all.length);
    expect(streamName('t-x1', 'INBOUND')).toBe('T_X1_INBOUND');
  });

  it('names every RPC after its responder and gives every notification tokens', () => {
    for (const [name, def] of Object.entries(RPCS)) expect(name.split('.')[0]).toBe(def.responder);
    for (const def of Object.values(NOTIFICATIONS)) expect(def.tokens.length).toBeGreaterThan(0);
  });
});

describe('payload schemas', () => {
  const envelope = {
    envelope_id: 'env_0123456789',
    phone_number_id: '1001',
    from: { wa_id: '4915112345678', device_id: 1 },
    type: 'prekey',
    ciphertext: 'AAECAw==',
    received_at: '2026-11-25T10:00:00.000Z',
  };

  it('accepts a valid envelope and rejects wrong types, unknown fields and bad base64 with a typed error', () => {
    expect(parsePayload('s', DeviceEnvelope, envelope)).toEqual(envelope);
    for (const bad of [
      { ...envelope, from: { wa_id: '+4915112345678', device_id: 1 } },
      { ...envelope, from: { wa_id: '4915112345678', device_id: 0 } },
      { ...envelope, type: 'sealed' },
      { ...envelope, ciphertext: 'not base64!' },
      { ...envelope, extra: true },
      'a string',
      null,
    ]) {
      expect(() => parsePayload('s', DeviceEnvelope, bad)).toThrow(ProtocolValidationError);
    }
  });

  it('caps text bodies at 4096 characters like Cloud API', () => {
    const req = (body: string) => ({
      wamid: 'wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA',
      phone_number_id: '1001',
      to: '4915112345678',
      content: { type: 'text', text: { body } },
      accepted_at: '2026-11-25T10:00:00.000Z',
    });
    expect(OutboundRequest.safeParse(req('x'.repeat(4096))).success).toBe(true);
    expect(OutboundRequest.safeParse(req('x'.repeat(4097))).success).toBe(false);
    expect(OutboundRequest.safeParse(req('')).success).toBe(false);
  });

  it('requires the identity-key hash as 64 hex chars', () => {
    const m = {
      wamid: 'wamid.AAAAAAAAAAAA',
      envelope_id: 'env_0123456789',
      phone_number_id: '1001',
      from: { wa_id: '4915112345678', device_id: 1 },
      identity_key_hash: 'ab'.repeat(32),
      identity_changed: false,
      sent_at: 1,
      received_at: '2026-11-25T10:00:00.000Z',
      content: { type: 'text', text: { body: 'hi' } },
    };
    expect(InboundMessage.safeParse(m).success).toBe(true);
    expect(InboundMessage.safeParse({ ...m, identity_key_hash: 'AB'.repeat(32) }).success).toBe(false);
  });
});

describe('Cloud API errors', () => {
  it("builds Meta's envelope with Meta's HTTP statuses", () => {
    const body = cloudApiErrorBody(130429, 'Cloud API message throughput has been reached.', 'trace1');
    expect(body).toEqual({
      error: {
        message: '(#130429) Rate limit hit',
        type: 'OAuthException',
        code: 130429,
        error_data: {
          messaging_product: 'whatsapp',
          details: 'Cloud API message throughput has been reached.',
        },
        fbtrace_id: 'trace1',
      },
    });
    expect(CLOUD_API_ERRORS[190].http).toBe(401);
    expect(CLOUD_API_ERRORS[131000].http).toBe(500);
    expect(CLOUD_API_ERRORS[10].http).toBe(403);
  });
});
