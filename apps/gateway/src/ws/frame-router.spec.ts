import { parseClientFrame } from './frame-router';

const send = {
  type: 'send',
  id: 'envelope-1',
  to: '1500000001',
  ciphertext_type: 'whisper',
  ciphertext: 'AAECAw==',
};

describe('parseClientFrame', () => {
  it('accepts each documented client frame', () => {
    for (const f of [
      send,
      { type: 'ack', id: 'a', wamids: ['wamid.AAAAAAAAAA'] },
      { type: 'ack', id: 'a', wamids: ['wamid.AAAAAAAAAA'], outcome: 'undecryptable' },
      { type: 'receipt', id: 'r', status: 'read', phone_number_id: '1', wamids: ['wamid.AAAAAAAAAA'] },
      { type: 'report', id: 'p', phone_number_id: '1', kind: 'block' },
    ]) {
      expect(parseClientFrame(JSON.stringify(f))).toMatchObject({ ok: true });
    }
  });

  it.each([
    ['{not json', 'malformed_frame', null],
    ['[1,2]', 'malformed_frame', null],
    ['null', 'malformed_frame', null],
    [JSON.stringify({ type: 'hello', id: 'x1' }), 'unknown_type', 'x1'],
    [JSON.stringify({ ...send, ciphertext: 'not base64!' }), 'invalid_frame', 'envelope-1'],
    [JSON.stringify({ ...send, to: '12.*' }), 'invalid_frame', 'envelope-1'],
    [JSON.stringify({ ...send, extra: 1 }), 'invalid_frame', 'envelope-1'],
    [JSON.stringify({ ...send, id: 'x'.repeat(65) }), 'invalid_frame', null],
    [JSON.stringify({ ...send, ciphertext: 'A'.repeat(90_000) }), 'invalid_frame', 'envelope-1'],
  ])('answers %s with %s', (data, code, id) => {
    expect(parseClientFrame(data)).toMatchObject({ ok: false, error: { type: 'error', code, id } });
  });
});
