// Every kustomization renders with `kubectl kustomize` (as the operator runs it) and every object in the
// output validates: built-in kinds against the Kubernetes OpenAPI schemas (kubernetes-models), Prometheus
// Operator kinds against their models, CloudNativePG kinds against the committed minimal schemas; and
// no object carries a field its type does not have (a misspelt field would be dropped silently).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { CRD_SCHEMAS } from './support/crd-schemas';
import { OVERLAYS, ROOT, render, type K8sObject } from './support/render';
import { unknownFieldProblems } from './support/typecheck';

type Result = { ok: true } | { ok: false; error: string } | { ok: 'no-model' };

/** kubernetes-models is ESM-only: validation runs in a child Node process. */
function validateWithModels(objects: unknown[]): Result[] {
  const out = execFileSync(process.execPath, [join(__dirname, 'support/validate-k8s.mjs')], {
    input: JSON.stringify(objects),
    encoding: 'utf8',
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '' },
    maxBuffer: 64 << 20,
  });
  return JSON.parse(out) as Result[];
}

function problems(objects: K8sObject[]): string[] {
  const results = validateWithModels(objects);
  return objects.flatMap((o, i) => {
    const id = `${o.kind}/${o.metadata?.name}`;
    const r = results[i];
    if (r.ok === true) return [];
    if (r.ok === false) return [`${id}: ${r.error}`];
    const crd = CRD_SCHEMAS[`${o.apiVersion}/${o.kind}`];
    if (!crd) return [`${id}: no schema for ${o.apiVersion} ${o.kind}`];
    const p = crd.safeParse(o);
    return p.success ? [] : p.error.issues.map((x) => `${id}: ${x.path.join('.')}: ${x.message}`);
  });
}

describe.each(['deploy/base', ...OVERLAYS.map((o) => `deploy/overlays/${o}`)])('%s', (dir) => {
  it('renders and every object validates against its schema', () => {
    const objects = render(dir);
    expect(objects.length).toBeGreaterThan(20);
    expect(problems(objects)).toEqual([]);
    expect(unknownFieldProblems(objects)).toEqual([]);
  });

  it('gives every object a name, and overlays one namespace', () => {
    const objects = render(dir);
    const dns1123 = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
    expect(objects.filter((o) => !dns1123.test(o.metadata?.name ?? '')).map((o) => o.metadata?.name)).toEqual(
      [],
    );
    if (dir.includes('overlays')) {
      const namespaces = new Set(
        objects.filter((o) => o.kind !== 'Namespace').map((o) => o.metadata.namespace),
      );
      expect(namespaces.size).toBe(1);
    }
  });
});

describe('the validation itself', () => {
  // Guards against a validator that accepts anything: broken objects must be reported.
  it('rejects a Deployment with wrong types, an unknown kind and a Cluster without instances', () => {
    const bad: K8sObject[] = [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'x' },
        spec: {
          replicas: 'two',
          selector: {},
          template: { spec: { containers: [{ name: 'x', image: 1 }] } },
        },
      },
      { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } },
      {
        apiVersion: 'postgresql.cnpg.io/v1',
        kind: 'Cluster',
        metadata: { name: 'db' },
        spec: { instance: 3, storage: { size: '1Gi' } },
      },
    ];
    const p = problems(bad);
    expect(p.some((m) => m.startsWith('Deployment/x') && m.includes('replicas'))).toBe(true);
    expect(p.some((m) => m.startsWith('Widget/w') && m.includes('no schema'))).toBe(true);
    expect(p.some((m) => m.startsWith('Cluster/db') && m.includes('instances'))).toBe(true);
  });

  it('rejects a misspelt field the JSON schemas would let through', () => {
    const [dep] = render('deploy/overlays/production').filter((o) => o.kind === 'Deployment');
    const typo = JSON.parse(JSON.stringify(dep)) as {
      spec: { template: { spec: { containers: object[] } } };
    };
    const c = typo.spec.template.spec.containers[0] as Record<string, unknown>;
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
    expect(problems([typo as unknown as K8sObject])).toEqual([]);
    expect(unknownFieldProblems([typo as unknown as K8sObject]).join()).toMatch(/readinesProbe/);
  });
});
