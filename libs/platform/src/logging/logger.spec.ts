import { Writable } from 'node:stream';
import pino from 'pino';
import { REDACT_PATHS, redactUrl } from './logger';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const log = pino({ redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, stream);
  return { log, text: () => lines.join('') };
}

describe('log redaction', () => {
  it('never writes tokens, passwords, secrets, keys or message bodies', () => {
    const { log, text } = capture();
    log.info({ req: { headers: { authorization: 'Bearer tok-123' } }, token: 'tok-456' }, 'request');
    log.info({ business: { app_secret: 'appsecret-789', password: 'pw-000', master_key: 'mk-111' } }, 'x');
    log.info({ message: { body: 'hello private text', ciphertext: 'c2VjcmV0' } }, 'y');
    const out = text();
    for (const secret of [
      'tok-123',
      'tok-456',
      'appsecret-789',
      'pw-000',
      'mk-111',
      'hello private text',
      'c2VjcmV0',
    ]) {
      expect(out).not.toContain(secret);
    }
    expect(out).toContain('[redacted]');
  });

  it('strips credentials from URLs', () => {
    expect(redactUrl('postgres://user:pw@db:5432/x')).toBe('postgres://[redacted]@db:5432/x');
    expect(redactUrl('nats://a:b@n1:4222,nats://c:d@n2:4222')).toBe(
      'nats://[redacted]@n1:4222,nats://[redacted]@n2:4222',
    );
  });
});
