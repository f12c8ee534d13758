import { randomBytes } from 'node:crypto';
import { createTestDatabase, freePort, TEST_PG_ADMIN_URL } from '@relay/testing';
import { createServiceDataSource, DatabaseUnavailableError, migrate } from './data-source';

// Real Postgres: what an operator sees when DATABASE_URL names a database that is not there, or a
// server that does not listen, and that a good URL still connects and migrates.
const dataSource = (url: string) =>
  createServiceDataSource({ url, schema: 'probe', entities: [], migrations: [], poolSize: 1 });

const withDatabase = (admin: string, db: string) => {
  const u = new URL(admin);
  u.pathname = `/${db}`;
  u.password = 'not-a-real-secret-xyz';
  return u.toString();
};

describe('connecting a service to its database', () => {
  it('names a missing database and how to fix it, without the password', async () => {
    const name = `missing_${randomBytes(6).toString('hex')}`;
    const err = await migrate(dataSource(withDatabase(TEST_PG_ADMIN_URL, name))).catch((e: Error) => e);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect((err as Error).message).toContain(`database "${name}" on `);
    expect((err as Error).message).toContain(`createdb ${name}`);
    expect((err as Error).message).toContain('DATABASE_URL');
    expect((err as Error).message).not.toContain('not-a-real-secret-xyz');
  });

  it('says when nothing listens at the address', async () => {
    const port = await freePort();
    const err = await migrate(dataSource(`postgres://postgres@127.0.0.1:${port}/relay`)).catch(
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect((err as Error).message).toMatch(
      new RegExp(`127\\.0\\.0\\.1:${port} is not reachable \\(ECONNREFUSED\\)`),
    );
  });

  it('connects and migrates an existing database as before', async () => {
    const db = await createTestDatabase('dsprobe');
    const ds = dataSource(db.url);
    try {
      expect(await migrate(ds)).toEqual([]);
      expect(ds.isInitialized).toBe(true);
    } finally {
      await ds.destroy();
      await db.drop();
    }
  });
});
