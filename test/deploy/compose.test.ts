// docker-compose.yml (issue 2): no Docker engine runs here, so the file is parsed and checked: every
// relay service it runs exists as an app, ports and environment names agree with the services' config
// schemas (read at test time), secrets come from the environment, healthchecks exist and services
// start in order of health; NATS has JetStream with store encryption, and PostgreSQL is there.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { appServices, envEntries, interpolate, isInterpolated, loadCompose } from './support/compose';
import { ROOT } from './support/render';
import {
  SECRET_NAME,
  SERVICES,
  SERVICE_NAMES,
  serviceAppDirs,
  configProblems,
  placeholderFor,
  requiredNames,
  shapeOf,
  type ServiceName,
} from './support/services';

const file = loadCompose();
const apps = appServices(file);

describe('docker-compose.yml', () => {
  it('runs exactly the apps of apps/, each from its own built entry point', () => {
    expect(Object.keys(apps).sort()).toEqual(serviceAppDirs().sort());
    expect(Object.keys(apps).sort()).toEqual([...SERVICE_NAMES].sort());
    for (const [name, s] of Object.entries(apps)) {
      expect(s.command).toEqual(['node', `dist/apps/${name}/src/main.js`]);
    }
  });

  it.each(SERVICE_NAMES)('%s: port, environment names and values agree with its config schema', (svc) => {
    const s = apps[svc];
    const env = envEntries(s);
    const names = env.map((e) => e.name);
    const known = Object.keys(shapeOf(svc));
    expect(names.filter((n) => !known.includes(n))).toEqual([]);
    expect(requiredNames(svc).filter((n) => !names.includes(n))).toEqual([]);
    const port = String(SERVICES[svc].port);
    expect(env.find((e) => e.name === 'HTTP_PORT')?.value).toBe(port);
    const published = [...(s.ports ?? []).map((p) => p.split(':').pop()), ...(s.expose ?? [])];
    expect(published).toEqual([port]);
    expect(SERVICES[svc].public).toBe((s.ports ?? []).length > 0);
    // The values Compose would pass (the deployment's secrets stand in as generated values) parse.
    const resolved = Object.fromEntries(
      env.map(({ name, value }) => [
        name,
        /^\$\{[A-Z0-9_]+(:\?[^}]*)?\}$/.test(value)
          ? placeholderFor(svc as ServiceName, name)
          : interpolate(value, () => randomBytes(12).toString('hex')),
      ]),
    );
    expect(configProblems(svc, resolved)).toEqual([]);
  });

  it('takes every secret from the environment, never inline', () => {
    for (const [name, s] of Object.entries(file.services)) {
      const inline = envEntries(s).filter((e) => SECRET_NAME.test(e.name) && !isInterpolated(e.value));
      expect([name, inline]).toEqual([name, []]);
      // A credential inside a URL must be interpolated too.
      const urls = envEntries(s).filter((e) => /:\/\/[^/@\s]+:[^@\s]+@/.test(e.value));
      expect([name, urls.filter((e) => !/:\/\/[^/@\s]+:\$\{[A-Z0-9_]+/.test(e.value))]).toEqual([name, []]);
      for (const f of [s.env_file].flat().filter(Boolean)) expect(String(f)).toBe('.env');
    }
    const ignored = readFileSync(join(ROOT, '.gitignore'), 'utf8').split('\n');
    expect(ignored).toContain('.env');
  });

  it('has a healthcheck on every long-running service and starts services in order of health', () => {
    for (const [name, s] of Object.entries(file.services)) {
      if (name === 'migrate') continue;
      expect([name, Boolean(s.healthcheck?.test)]).toEqual([name, true]);
    }
    for (const [name, s] of Object.entries(apps)) {
      const port = String(SERVICES[name as ServiceName].port);
      expect([name, [s.healthcheck?.test].flat().join(' ')]).toEqual([
        name,
        expect.stringContaining(`:${port}/ready`),
      ]);
      expect(s.depends_on).toEqual({
        nats: { condition: 'service_healthy' },
        postgres: { condition: 'service_healthy' },
        migrate: { condition: 'service_completed_successfully' },
      });
      expect([name, s.user, s.read_only, s.cap_drop]).toEqual([name, '10001:10001', true, ['ALL']]);
    }
    expect(file.services.migrate.command).toEqual(['node', 'tools/migrate.mjs']);
    expect(file.services.migrate.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
  });

  it('runs NATS with JetStream, store encryption and the Kubernetes users; PostgreSQL with a health check', () => {
    const nats = file.services.nats;
    const mounts = Object.fromEntries(
      (nats.volumes ?? []).map((v) => v.split(':')).map(([src, dst]) => [dst, src]),
    );
    const conf = readFileSync(join(ROOT, mounts['/etc/nats/nats.conf']), 'utf8');
    expect(conf).toMatch(/jetstream\s*\{[^}]*cipher:\s*(chachapoly|aes)[^}]*key:\s*\$JS_KEY/s);
    expect(conf).toMatch(/include "auth\.conf"/);
    expect(mounts['/etc/nats/auth.conf']).toBe('./deploy/base/nats/auth.conf');
    expect(isInterpolated(String(nats.environment?.JS_KEY))).toBe(true);
    expect(nats.command).toEqual(['--config', '/etc/nats/nats.conf']);
    const pg = file.services.postgres;
    expect(pg.image).toMatch(/^postgres:\d+/);
    expect([pg.healthcheck?.test].flat().join(' ')).toMatch(/pg_isready/);
    expect(isInterpolated(String(pg.environment?.POSTGRES_PASSWORD))).toBe(true);
  });

  it('builds the relay image from the multi-stage Dockerfile, which ships what the commands run', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const stages = [...dockerfile.matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map((m) => m[1]);
    expect(stages.length).toBeGreaterThanOrEqual(3);
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(runtime).toMatch(/^USER\s+[1-9]\d*:[1-9]\d*$/m);
    expect(runtime).toMatch(/COPY --from=build \/app\/dist \.\/dist/);
    expect(runtime).toMatch(/COPY tools\/migrate\.mjs tools\/migrate\.mjs/);
    expect(runtime).not.toMatch(/npm (ci|install)(?![^\n]*--omit=dev)/);
    for (const [, src] of dockerfile.matchAll(/^COPY (?!--from)(\S+(?: \S+)*) \S+$/gm)) {
      for (const path of src.split(' ')) expect([path, existsSync(join(ROOT, path))]).toEqual([path, true]);
    }
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const p of ['**/node_modules', 'dist', '.data', '**/.env', '.git']) expect(ignore).toContain(p);
    for (const s of Object.values(apps)) expect(s.build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
  });
});
