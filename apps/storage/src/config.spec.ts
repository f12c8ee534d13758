import { loadConfig, ConfigError } from '@relay/platform';
import { StorageConfigSchema, parseRegionUrls } from './config';

const base = {
  NATS_URL: 'nats://127.0.0.1:4222',
  DATABASE_URL: 'postgres://u:p@db/relay',
  MASTER_KEY: `m1:${Buffer.alloc(32, 7).toString('base64')}`,
};

describe('storage configuration', () => {
  it('maps region codes to database URLs', () => {
    const cfg = loadConfig(StorageConfigSchema, {
      ...base,
      STORAGE_REGION_DATABASE_URLS: 'DE=postgres://u:p@de/relay, IN=postgresql://u:p@in/relay',
    });
    expect([...cfg.STORAGE_REGION_DATABASE_URLS]).toEqual([
      ['DE', 'postgres://u:p@de/relay'],
      ['IN', 'postgresql://u:p@in/relay'],
    ]);
    expect(loadConfig(StorageConfigSchema, base).STORAGE_REGION_DATABASE_URLS.size).toBe(0);
  });

  it('rejects bad region maps without echoing the URL (it carries a password)', () => {
    expect(() => parseRegionUrls('de=postgres://x/y')).toThrow(/2-letter region/);
    expect(() => parseRegionUrls('DE=mysql://secret@x/y')).toThrow('region DE: not a postgres:// URL');
    expect(() => parseRegionUrls('DE=postgres://a/b,DE=postgres://c/d')).toThrow(/twice/);
    try {
      loadConfig(StorageConfigSchema, { ...base, STORAGE_REGION_DATABASE_URLS: 'DE=mysql://hunter2@x/y' });
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain('STORAGE_REGION_DATABASE_URLS');
      expect((err as Error).message).not.toContain('hunter2');
    }
  });

  it('requires a master key and caps retention at 30 days', () => {
    const { MASTER_KEY: _omit, ...noKey } = base;
    expect(() => loadConfig(StorageConfigSchema, noKey)).toThrow(/MASTER_KEY: is required/);
    expect(() => loadConfig(StorageConfigSchema, { ...base, MASTER_KEY: 'm1:short' })).toThrow(/MASTER_KEY/);
    expect(() => loadConfig(StorageConfigSchema, { ...base, RETENTION_DAYS: '31' })).toThrow(
      /RETENTION_DAYS/,
    );
    expect(() => loadConfig(StorageConfigSchema, { ...base, USER_IDENTIFIER_RETENTION_DAYS: '45' })).toThrow(
      /USER_IDENTIFIER_RETENTION_DAYS/,
    );
  });
});
