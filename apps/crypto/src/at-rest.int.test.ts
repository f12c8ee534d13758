import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  KyberPreKeyRecord,
  PreKeyRecord,
  SessionRecord,
  SignedPreKeyRecord,
} from '@signalapp/libsignal-client';
import { CryptoTestEnv, until } from './testing/harness.test';
import { DeviceClient } from './testing/device-client';
import { Vault, unpackSessionState } from './keys/vault';

// Real Postgres, NATS and libsignal; the crypto service runs in-process. The test knows the master key
// (as an operator would) and uses it to learn the plaintext key bytes, then searches the database dump.
const t = new CryptoTestEnv();
const PN = '15550200';
const SECRET_BODY = 'my card number is 4111 1111 1111 1111';

beforeAll(async () => {
  await t.setup('cryptorest');
  await t.startInProcess({ PREKEY_POOL_SIZE: '5' });
  await t.provision(PN);
  const dev = new DeviceClient('4915200000001', 1);
  await dev.startSession(PN, await t.bundle(PN, dev));
  const env = await t.envelope(PN, dev, SECRET_BODY);
  await t.send(env);
  await until(() => t.messageFor(env.envelope_id)[0]);
});
afterAll(() => t.teardown());

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const chunks = (b: Uint8Array, size = 32) =>
  [0.1, 0.4, 0.7].map((f) =>
    Buffer.from(b.subarray(Math.floor(b.length * f), Math.floor(b.length * f) + size)),
  );

describe('key material at rest', () => {
  it('a dump of the crypto schema holds no private key and no session record in the clear', async () => {
    const vault = Vault.local(t.ds, t.masterKey);
    const secrets: { what: string; bytes: Buffer }[] = [];

    const [id] = await t.ds.query(
      `SELECT identity_private FROM crypto.identities WHERE phone_number_id = $1`,
      [PN],
    );
    secrets.push({
      what: 'identity private key',
      bytes: await vault.open(PN, 'identity', 'private', id.identity_private),
    });

    const [sp] = await t.ds.query(
      `SELECT id, record FROM crypto.signed_prekeys WHERE phone_number_id = $1 LIMIT 1`,
      [PN],
    );
    const signed = SignedPreKeyRecord.deserialize(
      new Uint8Array(await vault.open(PN, 'signed', sp.id, sp.record)),
    );
    secrets.push({ what: 'signed prekey private key', bytes: Buffer.from(signed.privateKey().serialize()) });

    const [pk] = await t.ds.query(
      `SELECT id, record FROM crypto.prekeys WHERE phone_number_id = $1 LIMIT 1`,
      [PN],
    );
    const pre = PreKeyRecord.deserialize(new Uint8Array(await vault.open(PN, 'prekey', pk.id, pk.record)));
    secrets.push({ what: 'one-time prekey private key', bytes: Buffer.from(pre.privateKey().serialize()) });

    const [ky] = await t.ds.query(
      `SELECT id, record FROM crypto.kyber_prekeys WHERE phone_number_id = $1 AND last_resort LIMIT 1`,
      [PN],
    );
    const kyber = KyberPreKeyRecord.deserialize(
      new Uint8Array(await vault.open(PN, 'kyber', ky.id, ky.record)),
    );
    // ML-KEM-1024 secret key = secret part (1536 B) | public key | H(pk) | z: search the secret parts only.
    const dk = Buffer.from(kyber.secretKey().serialize());
    for (const at of [100, 700, 1300, dk.length - 32])
      secrets.push({ what: 'kyber secret key', bytes: dk.subarray(at, at + 32) });

    const [s] = await t.ds.query(
      `SELECT wa_id, device_id, state FROM crypto.sessions WHERE state IS NOT NULL LIMIT 1`,
    );
    const state = unpackSessionState(await vault.open(PN, 'session', `${s.wa_id}:${s.device_id}`, s.state));
    const session = state.session ?? new Uint8Array();
    expect(SessionRecord.deserialize(new Uint8Array(session)).hasCurrentState()).toBe(true);
    for (const c of chunks(session)) secrets.push({ what: 'session record', bytes: c });
    secrets.push({ what: 'message body', bytes: Buffer.from(SECRET_BODY) });

    // 1. pg_dump of the schema (bytea is dumped as hex).
    const dump = execFileSync('pg_dump', ['--data-only', '--schema=crypto', t.db.url], {
      maxBuffer: 256 * 1024 * 1024,
    });
    expect(dump.toString()).toContain('COPY crypto.sessions');
    // 2. Every column of every crypto table, as raw bytes.
    const tables: { table_name: string }[] = await t.ds.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'crypto'`,
    );
    const parts: Buffer[] = [];
    for (const { table_name } of tables) {
      for (const row of await t.ds.query(`SELECT * FROM crypto."${table_name}"`)) {
        for (const v of Object.values(row as Record<string, unknown>)) {
          parts.push(Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v) ?? ''));
        }
      }
    }
    const raw = Buffer.concat(parts);
    expect(raw.length).toBeGreaterThan(10_000);
    const dumpText = dump.toString('latin1').toLowerCase();
    for (const { what, bytes } of secrets) {
      expect({ what, inDump: dumpText.includes(hex(bytes)) || dump.includes(bytes) }).toEqual({
        what,
        inDump: false,
      });
      expect({ what, inRows: raw.includes(bytes) }).toEqual({ what, inRows: false });
    }
    // The test's search works: the identity public key is stored in the clear and is found.
    const [pub] = await t.ds.query(
      `SELECT identity_public FROM crypto.identities WHERE phone_number_id = $1`,
      [PN],
    );
    expect(dumpText.includes(hex(pub.identity_public))).toBe(true);
    expect(raw.includes(pub.identity_public)).toBe(true);
  });

  it('rotates the master key online: a replica started with the new key rewraps every data key', async () => {
    const next = `mk2:${randomBytes(32).toString('base64')}`;
    await t.startInProcess({ MASTER_KEY: next, MASTER_KEY_PREVIOUS: t.masterKey });
    await until(async () => {
      const ids: { master_key_id: string }[] = await t.ds.query(
        `SELECT DISTINCT master_key_id FROM crypto.data_keys`,
      );
      return ids.length === 1 && ids[0].master_key_id === 'mk2';
    });
    // The old master key is no longer needed: the new one alone opens the stored keys...
    const [id] = await t.ds.query(
      `SELECT identity_private FROM crypto.identities WHERE phone_number_id = $1`,
      [PN],
    );
    expect((await Vault.local(t.ds, next).open(PN, 'identity', 'private', id.identity_private)).length).toBe(
      32,
    );
    // ...and the service kept working throughout (both replicas consume the same stream).
    const dev = new DeviceClient('4915200000002', 1);
    await dev.startSession(PN, await t.bundle(PN, dev));
    const env = await t.envelope(PN, dev, 'after rotation');
    await t.send(env);
    expect((await until(() => t.messageFor(env.envelope_id)[0])).payload.content).toEqual({
      type: 'text',
      text: { body: 'after rotation' },
    });
  });
});
