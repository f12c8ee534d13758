// The Kubernetes manifests give each service exactly the configuration its schema asks for (read from
// apps/<service>/src/config.ts at test time, so a new variable fails here until it is deployed), and
// the docker-compose stack uses the same images, commands, ports and environment names.
import { appServices, defaultOf, envEntries, loadCompose } from './support/compose';
import { OVERLAYS, find, renderOverlay } from './support/render';
import {
  SECRET_NAME,
  SERVICES,
  SERVICE_NAMES,
  configProblems,
  placeholderFor,
  requiredNames,
  shapeOf,
} from './support/services';
import { deployment, podTemplates, resolveEnv } from './support/workloads';

const compose = loadCompose();
const composeApps = appServices(compose);

describe.each(OVERLAYS)('overlay %s', (overlay) => {
  const objects = renderOverlay(overlay);

  it.each(SERVICE_NAMES)('%s gets every required variable, only known ones, and values that parse', (svc) => {
    const env = resolveEnv(objects, deployment(objects, svc).pod.containers[0]);
    const names = env.map((e) => e.name);
    expect(names.filter((n) => !(n in shapeOf(svc)))).toEqual([]);
    expect(requiredNames(svc).filter((n) => !names.includes(n))).toEqual([]);
    expect(env.filter((e) => SECRET_NAME.test(e.name) && e.source !== 'secret')).toEqual([]);
    // What the pod would see: ConfigMap and inline values as rendered, secrets (the optional ones
    // absent, as when their secret is not created) as generated values of the right shape.
    const values = Object.fromEntries(
      env
        .filter((e) => !(e.source === 'secret' && e.optional))
        .map((e) => [e.name, e.source === 'secret' ? placeholderFor(svc, e.name) : (e.value ?? '')]),
    );
    expect(configProblems(svc, values)).toEqual([]);
    expect(values.HTTP_PORT).toBe(String(SERVICES[svc].port));
  });

  it.each(SERVICE_NAMES)(
    '%s runs the same image, command, port and environment names as in Compose',
    (svc) => {
      const { pod } = deployment(objects, svc);
      const [c] = pod.containers;
      const s = composeApps[svc];
      expect(c.image).toBe(defaultOf(String(s.image)));
      expect(c.command).toEqual(s.command);
      expect(c.ports?.map((p) => String(p.containerPort))).toEqual([
        ...(s.ports ?? []).map((p) => p.split(':').pop()),
        ...(s.expose ?? []),
      ]);
      // Optional secrets (a previous master key during a rotation, a hook token) exist only when the
      // operator creates them; Compose passes them as empty values where the schema accepts that.
      const k8sEnv = resolveEnv(objects, c);
      const mandatory = k8sEnv.filter((e) => !(e.source === 'secret' && e.optional)).map((e) => e.name);
      const composeNames = envEntries(s).map((e) => e.name);
      expect(mandatory.filter((n) => !composeNames.includes(n))).toEqual([]);
      expect(composeNames.filter((n) => !k8sEnv.some((e) => e.name === n))).toEqual([]);
    },
  );

  it('runs NATS and the migrations like Compose does', () => {
    const nats = podTemplates([find(objects, 'StatefulSet', 'nats')])[0].pod.containers[0];
    expect(nats.image).toBe(compose.services.nats.image);
    const natsEnv = resolveEnv(objects, nats)
      .filter((e) => e.source === 'secret')
      .map((e) => e.name)
      .sort();
    expect(Object.keys(compose.services.nats.environment ?? {}).sort()).toEqual(natsEnv);
    const job = podTemplates(objects.filter((o) => o.kind === 'Job'))[0].pod.containers[0];
    expect(job.command).toEqual(compose.services.migrate.command);
    expect(job.image).toBe(defaultOf(String(compose.services.migrate.image)));
  });
});
