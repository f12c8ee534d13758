// The deployment rules of issue 8, checked on the rendered output of every overlay: probes, resources,
// non-root, read-only root filesystem, dropped capabilities, no secret values inline, NetworkPolicies
// for crypto and storage, autoscaling on CPU and consumer lag, one migration Job per release, and an
// Ingress only for the two public edges.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { OVERLAYS, ROOT, byKind, find, renderOverlay, type K8sObject } from './support/render';
import { SECRET_NAME, SERVICES, SERVICE_NAMES } from './support/services';
import { deployment, podTemplates, resolveEnv, type Container } from './support/workloads';

/** Sidecars without an endpoint to probe (the official NATS chart gives its reloader none either). */
const UNPROBED_SIDECARS = new Set(['StatefulSet/nats/reloader']);

describe.each(OVERLAYS)('overlay %s', (overlay) => {
  const objects = renderOverlay(overlay);
  const pods = podTemplates(objects);
  const containers = pods.flatMap(({ owner, pod }) =>
    [...pod.containers, ...(pod.initContainers ?? [])].map((c) => ({
      id: `${owner.kind}/${owner.metadata.name}/${c.name}`,
      owner,
      c,
    })),
  );

  it('probes every long-running container; services on /health (liveness) and /ready (readiness)', () => {
    const missing = containers
      .filter(
        ({ id, owner, c }) =>
          owner.kind !== 'Job' && !UNPROBED_SIDECARS.has(id) && !(c.livenessProbe && c.readinessProbe),
      )
      .map(({ id }) => id);
    expect(missing).toEqual([]);
    for (const svc of SERVICE_NAMES) {
      const [c] = deployment(objects, svc).pod.containers;
      expect(c.livenessProbe?.httpGet?.path).toBe('/health');
      expect(c.readinessProbe?.httpGet?.path).toBe('/ready');
      expect(c.ports?.map((p) => p.containerPort)).toEqual([SERVICES[svc].port]);
    }
  });

  it('gives every container resource requests and limits', () => {
    const bad = containers.filter(
      ({ c }) =>
        !c.resources?.requests?.cpu || !c.resources?.requests?.memory || !c.resources?.limits?.memory,
    );
    expect(bad.map(({ id }) => id)).toEqual([]);
  });

  it('runs every pod as non-root, read-only, without privilege escalation or capabilities', () => {
    for (const { owner, pod } of pods) {
      const id = `${owner.kind}/${owner.metadata.name}`;
      expect([id, pod.securityContext?.runAsNonRoot]).toEqual([id, true]);
      expect([id, (pod.securityContext?.runAsUser ?? 0) > 0]).toEqual([id, true]);
    }
    const bad = containers.filter(
      ({ c }) =>
        c.securityContext?.readOnlyRootFilesystem !== true ||
        c.securityContext?.allowPrivilegeEscalation !== false ||
        !c.securityContext?.capabilities?.drop?.includes('ALL') ||
        (c.securityContext?.capabilities?.add ?? []).length > 0,
    );
    expect(bad.map(({ id }) => id)).toEqual([]);
  });

  it('takes every secret by secretKeyRef and commits no Secret object or credential', () => {
    expect(byKind(objects, 'Secret')).toEqual([]);
    const inlineSecrets = containers.flatMap(({ id, c }) =>
      resolveEnv(objects, c)
        .filter((e) => SECRET_NAME.test(e.name) && e.source !== 'secret')
        .map((e) => `${id}: ${e.name} (${e.source})`),
    );
    expect(inlineSecrets).toEqual([]);
    const credentialLike = /:\/\/[^/\s:@]+:[^@\s]+@|BEGIN [A-Z ]*PRIVATE KEY|^[A-Za-z0-9+/]{40,}={0,2}$/;
    const leaks = byKind(objects, 'ConfigMap').flatMap((cm) =>
      Object.entries(cm.data ?? {})
        .filter(([k, v]) => SECRET_NAME.test(k) || credentialLike.test(v) || /password:\s*[^$\s]/i.test(v))
        .map(([k]) => `${cm.metadata.name}/${k}`),
    );
    expect(leaks).toEqual([]);
  });

  it('isolates crypto and storage: no ingress but metrics scraping, egress only to DNS, NATS and Postgres', () => {
    for (const svc of ['crypto', 'storage'] as const) {
      const np = find(objects, 'NetworkPolicy', svc).spec as {
        podSelector: { matchLabels: Record<string, string> };
        policyTypes: string[];
        ingress: { from: { namespaceSelector?: object }[]; ports: { port: number }[] }[];
        egress: {
          to: { podSelector?: { matchLabels?: Record<string, string> } }[];
          ports: { port: number }[];
        }[];
      };
      expect(np.podSelector.matchLabels['app.kubernetes.io/name']).toBe(svc);
      expect(np.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
      expect(np.ingress.flatMap((r) => r.ports.map((p) => p.port))).toEqual([SERVICES[svc].port]);
      expect(np.ingress.every((r) => r.from.every((f) => f.namespaceSelector))).toBe(true);
      expect(new Set(np.egress.flatMap((r) => r.ports.map((p) => p.port)))).toEqual(
        new Set([53, 4222, 5432]),
      );
      const natsRule = np.egress.find((r) => r.ports.some((p) => p.port === 4222));
      expect(natsRule?.to.map((t) => t.podSelector?.matchLabels?.['app.kubernetes.io/name'])).toEqual([
        'nats',
      ]);
    }
  });

  it('autoscales crypto and gateway on CPU and on JetStream consumer lag', () => {
    for (const name of ['crypto', 'gateway']) {
      const hpa = find(objects, 'HorizontalPodAutoscaler', name).spec as {
        scaleTargetRef: { kind: string; name: string };
        minReplicas: number;
        maxReplicas: number;
        metrics: { type: string; resource?: { name: string }; external?: { metric: { name: string } } }[];
      };
      expect(hpa.scaleTargetRef).toMatchObject({ kind: 'Deployment', name });
      expect(hpa.maxReplicas).toBeGreaterThan(hpa.minReplicas);
      expect(hpa.metrics.some((m) => m.type === 'Resource' && m.resource?.name === 'cpu')).toBe(true);
      expect(
        hpa.metrics.some(
          (m) => ['External', 'Pods'].includes(m.type) && /pending|lag/.test(m.external?.metric.name ?? ''),
        ),
      ).toBe(true);
      // The HPA owns the replica count: the Deployment must not fight it on every apply.
      expect((deployment(objects, name).owner.spec as { replicas?: number }).replicas).toBeUndefined();
    }
  });

  it('runs migrations in one Job named after the release, never in the services', () => {
    const jobs = byKind(objects, 'Job');
    expect(jobs).toHaveLength(1);
    const { pod } = podTemplates(jobs)[0];
    const [c] = pod.containers;
    expect(c.command).toEqual(['node', 'tools/migrate.mjs']);
    expect(pod.restartPolicy).toBe('Never');
    const tag = c.image.split(':').pop();
    expect(jobs[0].metadata.name).toBe(`relay-migrate-${tag}`);
    for (const svc of SERVICE_NAMES) {
      const db = resolveEnv(objects, c).find(
        (e) => e.name === `${svc.toUpperCase().replace(/-/g, '_')}_DATABASE_URL`,
      );
      expect([svc, db?.source]).toEqual([svc, 'secret']);
      expect(
        deployment(objects, svc)
          .pod.containers.flatMap((x) => x.command ?? [])
          .join(' '),
      ).not.toMatch(/migrat/);
    }
    expect(existsSync(join(ROOT, 'tools/migrate.mjs'))).toBe(true);
  });

  it('exposes only gateway and business-forwarding through Ingress', () => {
    const backends = byKind(objects, 'Ingress').flatMap((ing) => {
      const spec = ing.spec as {
        defaultBackend?: unknown;
        rules: { http: { paths: { backend: { service: { name: string } } }[] } }[];
      };
      expect(spec.defaultBackend).toBeUndefined();
      return spec.rules.flatMap((r) => r.http.paths.map((p) => p.backend.service.name));
    });
    expect(new Set(backends)).toEqual(new Set(SERVICE_NAMES.filter((s) => SERVICES[s].public)));
    // Which service a public request path reaches, as ingress-nginx matches (Prefix, or regex paths).
    const routeOf = (path: string) =>
      byKind(objects, 'Ingress').flatMap((ing) => {
        const regex = ing.metadata.annotations?.['nginx.ingress.kubernetes.io/use-regex'] === 'true';
        const spec = ing.spec as {
          rules: { http: { paths: { path: string; backend: { service: { name: string } } }[] } }[];
        };
        return spec.rules.flatMap((r) =>
          r.http.paths
            .filter((p) =>
              regex
                ? new RegExp(`^${p.path}`, 'i').test(path)
                : path === p.path || path.startsWith(`${p.path.replace(/\/$/, '')}/`),
            )
            .map((p) => p.backend.service.name),
        );
      });
    expect(routeOf('/v1/websocket')).toEqual(['gateway']);
    expect(routeOf('/v23.0/1234567890/messages')).toEqual(['business-forwarding']);
    for (const internal of ['/metrics', '/health', '/ready', '/admin/v1/businesses'])
      expect([internal, routeOf(internal)]).toEqual([internal, []]);
    const exposed = byKind(objects, 'Service').filter((s) =>
      ['LoadBalancer', 'NodePort'].includes(String(s.spec?.type)),
    );
    expect(exposed).toEqual([]);
  });

  it('runs each service from the one image with its own built entry point and a disruption budget', () => {
    const images = new Set(SERVICE_NAMES.map((s) => deployment(objects, s).pod.containers[0].image));
    expect(images.size).toBe(1);
    for (const svc of SERVICE_NAMES) {
      const [c] = deployment(objects, svc).pod.containers as Container[];
      expect(c.command).toEqual(['node', `dist/apps/${svc}/src/main.js`]);
      expect(existsSync(join(ROOT, `dist/apps/${svc}/src/main.js`))).toBe(true);
      const pdb = find(objects, 'PodDisruptionBudget', svc).spec as {
        selector: { matchLabels: Record<string, string> };
      };
      expect(pdb.selector.matchLabels['app.kubernetes.io/name']).toBe(svc);
    }
  });

  it('runs NATS as a 3-node JetStream cluster with store encryption and secret-held credentials', () => {
    const sts = find(objects, 'StatefulSet', 'nats');
    expect((sts.spec as { replicas: number }).replicas).toBe(3);
    const cm = objects.find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('nats-config'),
    ) as K8sObject;
    const conf = `${cm.data?.['nats.conf']}\n${cm.data?.['auth.conf']}`;
    expect(conf).toMatch(/jetstream\s*\{[^}]*cipher:\s*(chachapoly|aes)[^}]*key:\s*\$JS_KEY/s);
    expect(conf.match(/nats:\/\/nats-\d\.nats-headless:6222/g)).toHaveLength(3);
    const env = resolveEnv(objects, podTemplates([sts])[0].pod.containers[0]);
    const vars = new Set([...conf.matchAll(/:\s*\$([A-Z_]+)/g)].map((m) => m[1]));
    for (const v of vars)
      expect([v, env.find((e) => e.name === v)?.source]).toEqual([
        v,
        v === 'SERVER_NAME' ? 'inline' : 'secret',
      ]);
    const streamReplicas = byKind(objects, 'ConfigMap').flatMap((c) =>
      c.data?.NATS_STREAM_REPLICAS ? [c.data.NATS_STREAM_REPLICAS] : [],
    );
    expect(streamReplicas).toEqual(['3']);
  });

  it('keeps every service within its database connection budget at its most replicas', () => {
    const db = find(objects, 'Cluster', 'relay-db').spec as {
      postgresql: { parameters: { max_connections: string } };
      managed: { roles: { name: string; connectionLimit: number }[] };
    };
    let total = 0;
    for (const svc of SERVICE_NAMES) {
      const { owner, pod } = deployment(objects, svc);
      const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler' && o.metadata.name === svc);
      const most =
        (hpa?.spec as { maxReplicas?: number } | undefined)?.maxReplicas ??
        (owner.spec as { replicas: number }).replicas;
      const pool = Number(
        resolveEnv(objects, pod.containers[0]).find((e) => e.name === 'DATABASE_POOL_SIZE')?.value ?? 10,
      );
      const role = db.managed.roles.find((r) => r.name === svc.replace(/-/g, '_'));
      // One surge pod during a rollout, and the migration Job's two connections.
      expect([svc, (most + 1) * pool + 2 <= (role?.connectionLimit ?? 0)]).toEqual([svc, true]);
      total += role?.connectionLimit ?? 0;
    }
    expect(total).toBeLessThanOrEqual(Number(db.postgresql.parameters.max_connections) - 10);
  });

  it('keeps PostgreSQL in CloudNativePG clusters with replicas in production, regions apart', () => {
    const clusters = byKind(objects, 'Cluster');
    const main = find(objects, 'Cluster', 'relay-db').spec as {
      instances: number;
      managed: { roles: { name: string }[] };
    };
    expect(main.managed.roles.map((r) => r.name).sort()).toEqual([
      'business_forwarding',
      'crypto',
      'gateway',
      'storage',
    ]);
    if (overlay === 'production') {
      expect(clusters.every((c) => (c.spec as { instances: number }).instances >= 3)).toBe(true);
      expect(clusters.filter((c) => c.metadata.labels?.['relay.dev/storage-region']).length).toBeGreaterThan(
        0,
      );
      expect(clusters.every((c) => (c.spec as { backup?: unknown }).backup)).toBe(true);
    }
  });
});
