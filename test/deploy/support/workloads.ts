import { byKind, type K8sObject } from './render';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string };
    fieldRef?: { fieldPath: string };
  };
}
export interface Probe {
  httpGet?: { path: string; port: string | number };
  tcpSocket?: { port: string | number };
  exec?: { command: string[] };
}
export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
}
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  serviceAccountName?: string;
  restartPolicy?: string;
}

/** Every pod template in the output: Deployments, StatefulSets, Jobs. */
export function podTemplates(objects: K8sObject[]): { owner: K8sObject; pod: PodSpec }[] {
  return ['Deployment', 'StatefulSet', 'Job'].flatMap((kind) =>
    byKind(objects, kind).map((owner) => {
      const spec = owner.spec as { template: { spec: PodSpec } };
      return { owner, pod: spec.template.spec };
    }),
  );
}

export function deployment(objects: K8sObject[], name: string): { owner: K8sObject; pod: PodSpec } {
  const hit = podTemplates(objects).find(
    (p) => p.owner.kind === 'Deployment' && p.owner.metadata.name === name,
  );
  if (!hit) throw new Error(`no Deployment ${name}`);
  return hit;
}

export interface ResolvedEnv {
  name: string;
  source: 'inline' | 'configMap' | 'secret' | 'field';
  value?: string;
  optional?: boolean;
}

/** The environment a container gets, with where each variable comes from (ConfigMaps resolved). */
export function resolveEnv(objects: K8sObject[], c: Container): ResolvedEnv[] {
  const configMap = (name: string) => {
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name);
    if (!cm) throw new Error(`container ${c.name} reads missing ConfigMap ${name}`);
    return cm.data ?? {};
  };
  const out = new Map<string, ResolvedEnv>();
  for (const from of c.envFrom ?? []) {
    if (from.secretRef)
      throw new Error(`container ${c.name}: envFrom secretRef hides which secrets it reads`);
    if (!from.configMapRef) continue;
    for (const [name, value] of Object.entries(configMap(from.configMapRef.name))) {
      out.set(name, { name, source: 'configMap', value });
    }
  }
  for (const e of c.env ?? []) {
    const vf = e.valueFrom;
    if (vf?.secretKeyRef)
      out.set(e.name, { name: e.name, source: 'secret', optional: vf.secretKeyRef.optional });
    else if (vf?.configMapKeyRef)
      out.set(e.name, {
        name: e.name,
        source: 'configMap',
        value: configMap(vf.configMapKeyRef.name)[vf.configMapKeyRef.key],
      });
    else if (vf?.fieldRef) out.set(e.name, { name: e.name, source: 'field' });
    else out.set(e.name, { name: e.name, source: 'inline', value: e.value ?? '' });
  }
  return [...out.values()];
}
