import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import { DataKeyStore, dataKeysTableDdl, type Queryable } from './data-key-store';
import { LocalKeyProvider } from './key-provider';
import { DataKeyDestroyedError, KeyRing } from './key-ring';
import { EnvelopeDecryptError } from './aead';

const spec = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;
let db: TestDatabase;
let pg: Client;
let q: Queryable;

beforeAll(async () => {
  db = await createTestDatabase('keyring');
  pg = new Client({ connectionString: db.url });
  await pg.connect();
  await pg.query('CREATE SCHEMA svc');
  await pg.query(dataKeysTableDdl('svc').up);
  q = { query: async (sql, params) => (await pg.query(sql, params as unknown[])).rows };
});
afterAll(async () => {
  await pg.end();
  await db.drop();
});

describe('KeyRing on real Postgres', () => {
  it('keeps only wrapped keys at rest, isolates tenants and shreds on destroy', async () => {
    const ring = new KeyRing(new DataKeyStore(q, 'svc'), new LocalKeyProvider(spec('m1')));
    const a = await ring.encrypt('biz-a', Buffer.from('for a'), 'msg:1');
    const b = await ring.encrypt('biz-b', Buffer.from('for b'), 'msg:1');
    expect((await ring.decrypt('biz-a', a, 'msg:1')).toString()).toBe('for a');
    await expect(ring.decrypt('biz-b', a, 'msg:1')).rejects.toThrow(EnvelopeDecryptError);
    await expect(ring.decrypt('biz-a', a, 'msg:2')).rejects.toThrow(EnvelopeDecryptError);

    // A second process (fresh cache) reads the same key from the table.
    const other = new KeyRing(new DataKeyStore(q, 'svc'), ring['provider']);
    expect((await other.decrypt('biz-b', b, 'msg:1')).toString()).toBe('for b');

    const rows = (await pg.query('SELECT wrapped FROM svc.data_keys')).rows as { wrapped: Buffer }[];
    expect(rows).toHaveLength(2);
    for (const r of rows) expect(r.wrapped.length).toBe(1 + 12 + 16 + 32);

    expect(await ring.destroy('biz-a')).toBe(true);
    // `other` never cached biz-a's key, so it sees the destruction at once.
    await expect(other.decrypt('biz-a', a, 'msg:1')).rejects.toThrow(DataKeyDestroyedError);
    expect((await ring.decrypt('biz-b', b, 'msg:1')).toString()).toBe('for b');
  });

  it('loads an existing key without ever creating one', async () => {
    const ring = new KeyRing(new DataKeyStore(q, 'svc'), new LocalKeyProvider(spec('m1')));
    expect(await ring.load('biz-none')).toBe(false);
    expect((await pg.query(`SELECT 1 FROM svc.data_keys WHERE tenant = 'biz-none'`)).rows).toEqual([]);
    await ring.encrypt('biz-load', Buffer.from('x'), 'a');
    const other = new KeyRing(new DataKeyStore(q, 'svc'), ring['provider']);
    expect(await other.load('biz-load')).toBe(true);
  });

  it('creates one key per tenant even when replicas race', async () => {
    const provider = new LocalKeyProvider(spec('m1'));
    const rings = Array.from({ length: 8 }, () => new KeyRing(new DataKeyStore(q, 'svc'), provider));
    const blobs = await Promise.all(rings.map((r, i) => r.encrypt('biz-race', Buffer.from(`m${i}`), 'x')));
    const reader = new KeyRing(new DataKeyStore(q, 'svc'), provider);
    for (let i = 0; i < blobs.length; i++)
      expect((await reader.decrypt('biz-race', blobs[i], 'x')).toString()).toBe(`m${i}`);
  });

  it('rotates the master key online: rewraps every data key, data stays readable', async () => {
    await pg.query('DELETE FROM svc.data_keys');
    const m1 = spec('rot1');
    const ring1 = new KeyRing(new DataKeyStore(q, 'svc'), new LocalKeyProvider(m1));
    const sealed = await ring1.encrypt('biz-rot', Buffer.from('survives rotation'), 'r');
    const sealed2 = await ring1.encrypt('biz-rot2', Buffer.from('me too'), 'r');
    const m2 = spec('rot2');
    const ring2 = new KeyRing(new DataKeyStore(q, 'svc'), new LocalKeyProvider(m2, m1));
    expect((await ring2.decrypt('biz-rot', sealed, 'r')).toString()).toBe('survives rotation');
    const { rewrapped } = await ring2.rotate(2);
    expect(rewrapped).toBe(2);
    const ids = (await pg.query('SELECT DISTINCT master_key_id FROM svc.data_keys')).rows.map(
      (r) => r.master_key_id,
    );
    expect(ids).toEqual(['rot2']);
    // The old master key can now be dropped from configuration.
    const ring3 = new KeyRing(new DataKeyStore(q, 'svc'), new LocalKeyProvider(m2));
    expect((await ring3.decrypt('biz-rot', sealed, 'r')).toString()).toBe('survives rotation');
    expect((await ring3.decrypt('biz-rot2', sealed2, 'r')).toString()).toBe('me too');
    expect(await ring3.rotate()).toEqual({ rewrapped: 0 });
  });
});
