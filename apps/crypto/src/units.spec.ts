import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig } from '@relay/platform';
import { CryptoConfigSchema } from './config';
import { valuesList } from './common/sql';
import { inboundWamid, identityKeyHash } from './inbound/ids';
import { packSessionState, unpackSessionState } from './keys/vault';
import { nextIds } from './store/prekey.repository';

const baseEnv = {
  NATS_URL: 'nats://127.0.0.1:4222',
  DATABASE_URL: 'postgres://u@127.0.0.1/db',
};

describe('config', () => {
  it('requires a well-formed master key and never echoes it', () => {
    const secret = 'mk1:not-base64-of-32-bytes-but-secret';
    let err: unknown;
    try {
      loadConfig(CryptoConfigSchema, { ...baseEnv, MASTER_KEY: secret });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('MASTER_KEY');
    expect((err as Error).message).not.toContain('secret');
    expect(() => loadConfig(CryptoConfigSchema, baseEnv)).toThrow(/MASTER_KEY: is required/);
    const ok = loadConfig(CryptoConfigSchema, {
      ...baseEnv,
      MASTER_KEY: `k1:${randomBytes(32).toString('base64')}`,
    });
    expect(ok.CRYPTO_WORKERS).toBeGreaterThanOrEqual(1);
    expect(ok.HTTP_PORT).toBe(8082);
  });
});

describe('inbound ids', () => {
  const env = {
    phone_number_id: '1555',
    from: { wa_id: '4915112345678', device_id: 2 },
    envelope_id: 'abcdefgh12',
  };

  it('derives the same wamid for the same envelope and a different one otherwise', () => {
    const w = inboundWamid(env);
    expect(w).toMatch(/^wamid\.[A-Za-z0-9_-]{32}$/);
    expect(inboundWamid({ ...env })).toBe(w);
    expect(inboundWamid({ ...env, envelope_id: 'abcdefgh13' })).not.toBe(w);
    expect(inboundWamid({ ...env, from: { ...env.from, device_id: 3 } })).not.toBe(w);
  });

  it('hashes identity keys as SHA-256 hex', () => {
    expect(identityKeyHash(new Uint8Array([1, 2, 3]))).toBe(
      '039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81',
    );
  });
});

describe('session row packing', () => {
  it('round-trips identity and record, including absent parts', () => {
    const id = randomBytes(33);
    const rec = randomBytes(5000);
    const both = unpackSessionState(packSessionState(id, rec));
    expect(Buffer.from(both.identity ?? []).equals(id)).toBe(true);
    expect(Buffer.from(both.session ?? []).equals(rec)).toBe(true);
    expect(unpackSessionState(packSessionState(null, null))).toEqual({ identity: null, session: null });
  });
});

describe('helpers', () => {
  it('builds VALUES lists with one typed placeholder per value', () => {
    expect(valuesList(2, ['text', 'bytea'])).toBe('($1::text, $2::bytea), ($3::text, $4::bytea)');
  });

  it('keeps key ids inside 1..2^24-2', () => {
    expect(nextIds(1, 3)).toEqual([1, 2, 3]);
    expect(nextIds(0xfffffe, 3)).toEqual([0xfffffe, 1, 2]);
  });
});
