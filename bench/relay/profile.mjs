// Summaries of V8 CPU profiles (node --cpu-prof) of the relay's services: where each one spends its
// CPU, by package/file and by function (self time), main thread and worker threads together.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

function label(url) {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + 13).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 6);
  return url || null;
}

/** Self time by package (or project file) and by function for one set of .cpuprofile files. */
function summarize(files, top) {
  const byPackage = new Map();
  const byFunction = new Map();
  let busy = 0;
  for (const f of files) {
    const p = JSON.parse(readFileSync(f, 'utf8'));
    const nodes = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
    p.samples.forEach((id, i) => {
      const cf = nodes.get(id);
      const us = p.timeDeltas[i] ?? 0;
      if (!cf || cf.functionName === '(idle)') return;
      busy += us;
      const pkg = label(cf.url) ?? cf.functionName ?? '(native)';
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
      const fn = `${cf.functionName || '(anonymous)'} ${label(cf.url) ?? ''}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    });
  }
  const rank = (m) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: Math.round(us / 1000), percent: busy ? (100 * us) / busy : 0 }));
  return { busyMs: Math.round(busy / 1000), byPackage: rank(byPackage), byFunction: rank(byFunction) };
}

/** One summary per service: profiles are named CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile. */
export function summarizeProfiles(dir, pidsByService, top = 15) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const out = {};
  for (const [service, pids] of Object.entries(pidsByService)) {
    const mine = files.filter((f) => pids.includes(Number(f.split('.')[3]))).map((f) => join(dir, f));
    if (mine.length) out[service] = summarize(mine, top);
  }
  return out;
}
