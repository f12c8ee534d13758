import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const ROOT = join(__dirname, '../../..');
export const OVERLAYS = ['dev', 'production'] as const;
export type Overlay = (typeof OVERLAYS)[number];

/** A rendered Kubernetes object, loosely typed: tests read fields by path and check them. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  [key: string]: unknown;
}

const cache = new Map<string, K8sObject[]>();

/** Renders a kustomization with the kubectl that apt installs (`kubectl kustomize`), as an operator would. */
export function render(dir: string): K8sObject[] {
  const hit = cache.get(dir);
  if (hit) return hit;
  let out: string;
  try {
    out = execFileSync('kubectl', ['kustomize', join(ROOT, dir)], { encoding: 'utf8', maxBuffer: 64 << 20 });
  } catch (err) {
    // kustomize v5 (kubectl >= 1.27) is needed: Debian's kubernetes-client (1.20) is too old.
    throw new Error(`kubectl kustomize ${dir} failed (kubectl >= 1.27 on PATH?): ${(err as Error).message}`);
  }
  const docs = parseAllDocuments(out).map((d) => {
    if (d.errors.length) throw new Error(`${dir}: ${d.errors[0].message}`);
    return d.toJS() as K8sObject;
  });
  cache.set(dir, docs);
  return docs;
}

export const renderOverlay = (overlay: Overlay) => render(`deploy/overlays/${overlay}`);

export function byKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name} in the rendered output`);
  return o;
}
