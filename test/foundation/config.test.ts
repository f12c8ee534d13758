import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const SERVICES = ['gateway', 'business-forwarding', 'crypto', 'storage'];

/** Runs a built service with the given environment only (no inherited settings). */
function start(service: string, env: Record<string, string>) {
  return spawnSync(process.execPath, [join(ROOT, `dist/apps/${service}/src/main.js`)], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
}

describe('configuration validated at boot', () => {
  it.each(SERVICES)('%s with no configuration exits 1 naming each missing variable', (service) => {
    const r = start(service, {});
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${service}: invalid configuration`);
    expect(r.stderr).toMatch(/NATS_URL: is required but not set/);
    expect(r.stderr).toMatch(/DATABASE_URL: is required but not set/);
  });

  it('a malformed value is named with what is wrong, and never echoed', () => {
    const r = start('gateway', {
      NATS_URL: 'http://secret-host-value:4222',
      DATABASE_URL: 'postgres://u:topsecretpw@127.0.0.1/x',
      HTTP_PORT: 'eighty',
      LOG_LEVEL: 'loud',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/NATS_URL: must be nats:\/\/host:port/);
    expect(r.stderr).toMatch(/HTTP_PORT:/);
    expect(r.stderr).toMatch(/LOG_LEVEL:/);
    expect(r.stderr).not.toContain('secret-host-value');
    expect(r.stderr).not.toContain('topsecretpw');
  });
});
