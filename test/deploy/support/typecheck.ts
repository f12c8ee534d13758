import { join } from 'node:path';
import ts from 'typescript';
import { ROOT, type K8sObject } from './render';

/** Module of the kubernetes-models type for an object, or undefined for kinds without a model. */
export function modelModule(apiVersion: string, kind: string): string | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (!group) return `kubernetes-models/${version}/${kind}`;
  if (group === 'monitoring.coreos.com')
    return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
  if (group.endsWith('.k8s.io') || !group.includes('.'))
    return `kubernetes-models/${group}/${version}/${kind}`;
  return undefined;
}

/**
 * Type-checks each object as an object literal of its kubernetes-models interface. The JSON schemas do
 * not reject unknown fields; TypeScript's excess-property check does, at every depth, so a misspelt
 * field (readinesProbe, securityContex) is reported instead of being silently dropped by the API server.
 */
export function unknownFieldProblems(objects: K8sObject[]): string[] {
  const file = join(ROOT, 'test/deploy/__k8s_objects__.mts');
  const owners: (K8sObject | undefined)[] = [];
  const lines: string[] = [];
  objects.forEach((o, i) => {
    const mod = modelModule(o.apiVersion, o.kind);
    if (!mod) return;
    lines.push(`import type { I${o.kind} as T${i} } from '${mod}';`);
    owners.push(undefined);
  });
  objects.forEach((o, i) => {
    if (!modelModule(o.apiVersion, o.kind)) return;
    lines.push(`export const o${i}: T${i} = ${JSON.stringify(o)};`);
    owners.push(o);
  });
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === file ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file?.fileName === file && d.start !== undefined)
    .map((d) => {
      const line = d.file?.getLineAndCharacterOfPosition(d.start ?? 0).line ?? 0;
      const o = owners[line];
      const msg = ts.flattenDiagnosticMessageText(d.messageText, ' ');
      return `${o ? `${o.kind}/${o.metadata.name}` : 'import'}: ${msg.slice(0, 400)}`;
    });
}
