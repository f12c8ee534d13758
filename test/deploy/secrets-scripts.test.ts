// The scripts that generate secrets at deploy time (nothing secret is committed): create-secrets.sh
// creates every secret the production manifests read, with values the services' config schemas and
// nats-server accept, and never overwrites one; generate-env.sh writes a .env with which every service
// of docker-compose.yml gets a valid configuration. No cluster runs here: kubectl is a stand-in
// (support/fake-kubectl.sh) that stores secrets as files.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appServices, envEntries, interpolate, loadCompose } from './support/compose';
import { checkConfig } from './support/nats-harness';
import { ROOT, byKind, renderOverlay } from './support/render';
import { SERVICE_NAMES, configProblems, shapeOf } from './support/services';
import { deployment, podTemplates } from './support/workloads';

const tmp = mkdtempSync(join(tmpdir(), 'relay-secrets-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function createSecrets(state: string): void {
  const bin = join(tmp, 'bin');
  mkdirSync(bin, { recursive: true });
  copyFileSync(join(__dirname, 'support/fake-kubectl.sh'), join(bin, 'kubectl'));
  chmodSync(join(bin, 'kubectl'), 0o755);
  execFileSync('bash', [join(ROOT, 'deploy/scripts/create-secrets.sh'), 'relay', 'DE'], {
    env: { PATH: `${bin}:${process.env.PATH}`, KUBECTL_STATE: state },
    encoding: 'utf8',
  });
}
const read = (state: string, name: string, key: string) => readFileSync(join(state, name, key), 'utf8');
const snapshot = (state: string) =>
  readdirSync(state).flatMap((n) => readdirSync(join(state, n)).map((k) => `${n}/${k}=${read(state, n, k)}`));

describe('deploy/scripts/create-secrets.sh', () => {
  const state = join(tmp, 'k8s');
  beforeAll(() => createSecrets(state));
  const objects = renderOverlay('production');

  it('creates every secret and key the production manifests read', () => {
    const refs = podTemplates(objects).flatMap(({ pod }) =>
      pod.containers.flatMap((c) =>
        (c.env ?? []).flatMap((e) => {
          const r = e.valueFrom?.secretKeyRef;
          return r && !r.optional ? [`${r.name}/${r.key}`] : [];
        }),
      ),
    );
    for (const cluster of byKind(objects, 'Cluster')) {
      const spec = cluster.spec as { managed: { roles: { passwordSecret: { name: string } }[] } };
      for (const role of spec.managed.roles)
        refs.push(`${role.passwordSecret.name}/username`, `${role.passwordSecret.name}/password`);
    }
    expect(refs.length).toBeGreaterThan(20);
    expect(refs.filter((r) => !existsSync(join(state, r)))).toEqual([]);
    expect(read(state, 'relay-db-crypto', '.type')).toBe('kubernetes.io/basic-auth');
  });

  it('generates values each service accepts, and database URIs that match the roles', () => {
    for (const svc of SERVICE_NAMES) {
      for (const e of deployment(objects, svc).pod.containers[0].env ?? []) {
        const r = e.valueFrom?.secretKeyRef;
        if (!r || !existsSync(join(state, r.name, r.key))) continue;
        const parsed = shapeOf(svc)[e.name]?.safeParse(read(state, r.name, r.key));
        expect([svc, e.name, parsed?.success]).toEqual([svc, e.name, true]);
      }
    }
    const uri = new URL(read(state, 'relay-db-business-forwarding', 'uri'));
    expect([uri.username, uri.password, uri.host]).toEqual([
      'business_forwarding',
      read(state, 'relay-db-business-forwarding', 'password'),
      'relay-db-rw:5432',
    ]);
    expect(read(state, 'relay-storage-secrets', 'STORAGE_REGION_DATABASE_URLS')).toBe(
      `DE=${read(state, 'relay-db-de-storage', 'uri')}`,
    );
  });

  it('generates NATS secrets that nats-server accepts in the shipped configuration', () => {
    const cm = byKind(objects, 'ConfigMap').find((c) => c.metadata.name.startsWith('nats-config'));
    const dir = join(tmp, 'nats');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'nats.conf'), cm?.data?.['nats.conf'] ?? '');
    writeFileSync(join(dir, 'auth.conf'), cm?.data?.['auth.conf'] ?? '');
    const env: Record<string, string> = {
      SERVER_NAME: 'nats-0',
      JS_KEY: read(state, 'relay-nats-encryption', 'key'),
    };
    for (const u of ['gateway', 'business-forwarding', 'crypto', 'storage', 'admin']) {
      env[`${u.toUpperCase().replace(/-/g, '_')}_NATS_PASSWORD`] = read(state, 'relay-nats-users', u);
    }
    expect(Object.values(env).filter((v) => /^\d/.test(v))).toEqual([]);
    expect(checkConfig(dir, 'nats.conf', env).ok).toBe(true);
  });

  it('never overwrites a secret that exists', () => {
    const before = snapshot(state);
    createSecrets(state);
    expect(snapshot(state)).toEqual(before);
  });
});

describe('deploy/compose/generate-env.sh', () => {
  it('writes a .env with which every Compose service gets a valid configuration', () => {
    const repo = join(tmp, 'repo');
    mkdirSync(join(repo, 'deploy/compose'), { recursive: true });
    copyFileSync(join(ROOT, 'deploy/compose/generate-env.sh'), join(repo, 'deploy/compose/generate-env.sh'));
    execFileSync('sh', [join(repo, 'deploy/compose/generate-env.sh')], { encoding: 'utf8' });
    const env = Object.fromEntries(
      readFileSync(join(repo, '.env'), 'utf8')
        .split('\n')
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const compose = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
    const required = [...compose.matchAll(/\$\{([A-Z0-9_]+):\?/g)].map((m) => m[1]);
    expect(required.filter((v) => !(v in env))).toEqual([]);
    for (const [svc, s] of Object.entries(appServices(loadCompose()))) {
      const values = Object.fromEntries(
        envEntries(s).map((e) => [e.name, interpolate(e.value, (v) => env[v] ?? '')]),
      );
      expect([svc, configProblems(svc as (typeof SERVICE_NAMES)[number], values)]).toEqual([svc, []]);
    }
    // A second run refuses to overwrite the file.
    expect(() =>
      execFileSync('sh', [join(repo, 'deploy/compose/generate-env.sh')], { stdio: 'pipe' }),
    ).toThrow();
  });
});
