// Validates Kubernetes objects (JSON array on stdin) against the kubernetes-models schemas (the
// Kubernetes OpenAPI, compiled) and the Prometheus Operator models. Runs as its own Node process because
// those packages are ESM-only. Prints one result per object: { ok: true } | { ok: false, error } |
// { ok: 'no-model' } (custom resources without a published model; the caller checks those).
import { readFileSync } from 'node:fs';

const MODEL_PACKAGES = {
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
};

function modulePath(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (!group) return `kubernetes-models/${version}/${kind}`;
  if (MODEL_PACKAGES[group]) return `${MODEL_PACKAGES[group]}/${group}/${version}/${kind}`;
  if (group.endsWith('.k8s.io') || !group.includes('.'))
    return `kubernetes-models/${group}/${version}/${kind}`;
  return undefined;
}

async function validate(obj) {
  const path = modulePath(String(obj.apiVersion ?? ''), String(obj.kind ?? ''));
  if (!path) return { ok: 'no-model' };
  let mod;
  try {
    mod = await import(path);
  } catch {
    return { ok: false, error: `no Kubernetes schema for ${obj.apiVersion} ${obj.kind}` };
  }
  const Model = mod[obj.kind];
  try {
    new Model(obj).validate();
    return { ok: true };
  } catch (err) {
    return { ok: false, error: err.message };
  }
}

const objects = JSON.parse(readFileSync(0, 'utf8'));
const results = [];
for (const obj of objects) results.push(await validate(obj));
process.stdout.write(JSON.stringify(results));
