// Latency histograms, the printed table and the JSON + Markdown reports (docs/reports/).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';

export class Histogram {
  constructor() {
    this.values = [];
  }
  add(ms) {
    this.values.push(Math.max(0, ms));
  }
  summary() {
    const v = [...this.values].sort((a, b) => a - b);
    const q = (p) => (v.length ? v[Math.min(v.length - 1, Math.floor(p * v.length))] : null);
    return { count: v.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: v.at(-1) ?? null };
  }
}

function machine() {
  const c = cpus();
  return {
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
  };
}

const f = (n, d = 0) => (n === null || n === undefined ? '-' : Number(n).toFixed(d));

export function markdown(r) {
  const lines = [];
  const m = r.machine;
  lines.push(`# Relay benchmark ${r.at}`, '');
  lines.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}.`);
  lines.push(
    `Config: ${r.config.devices} devices, ${r.config.businesses} businesses, target ${r.config.rate}/s each way, ` +
      `${r.config.seconds} s window, ${r.config.cryptoReplicas} crypto processes; all services, NATS and ` +
      'Postgres on this machine.',
    '',
  );
  lines.push(
    '| direction | attempted | accepted | delivered | lost | duplicates | refused | unanswered | msg/s | p50 ms | ' +
      'p95 ms | p99 ms |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const [name, d] of [
    ['inbound (device send -> webhook 2xx)', r.inbound],
    ['outbound (API accept -> device decrypt)', r.outbound],
  ])
    lines.push(
      `| ${name} | ${d.attempted} | ${d.accepted} | ${d.delivered} | ${d.lost} | ${d.duplicates} | ${d.refused} | ` +
        `${d.unanswered ?? 0} | ${f(d.throughput)} | ` +
        `${f(d.latencyMs.p50)} | ${f(d.latencyMs.p95)} | ${f(d.latencyMs.p99)} |`,
    );
  lines.push(
    '',
    'lost = accepted but not delivered when the drain ended (at most ' +
      `${r.config.drain} s after the window). Above saturation these are messages still queued, durably, in ` +
      'JetStream or an outbox; below it every accepted message arrives.',
  );
  lines.push(
    '',
    '| process | CPU % of one core (window) | RSS MiB (end) | peak RSS MiB |',
    '| --- | --- | --- | --- |',
  );
  for (const [name, u] of Object.entries(r.usage.rows))
    lines.push(`| ${name} | ${f(u.cpuPercentOfOneCore)} | ${f(u.rssMiB)} | ${f(u.peakRssMiB)} |`);
  if (r.cpuMsPerMessage) {
    lines.push(
      '',
      'CPU per delivered message (window + drain, both directions; NATS and Postgres figures include anything ' +
        'else running on the shared servers):',
      '',
      '| process | CPU ms per message | write syscalls per message | read syscalls per message |',
      '| --- | --- | --- | --- |',
    );
    let sum = 0;
    for (const [name, ms] of Object.entries(r.cpuMsPerMessage)) {
      const io = r.syscallsPerMessage?.[name];
      lines.push(`| ${name} | ${f(ms, 2)} | ${io ? f(io.writes, 1) : ''} | ${io ? f(io.reads, 1) : ''} |`);
      // "of which" rows split the Postgres row by the service whose queries ran; they are not added.
      if (!name.startsWith('bench') && !name.trim().startsWith('of which')) sum += ms ?? 0;
    }
    lines.push(`| relay total (without the load generator) | ${f(sum, 2)} | | |`);
  }
  const bl = r.backlogAtWindowEnd;
  if (bl?.consumers) {
    lines.push(
      '',
      'Backlog at the end of the window (JetStream consumers of this run; pending / ack pending):',
      '',
    );
    for (const [name, c] of Object.entries(bl.consumers))
      if (c.pending || c.ackPending) lines.push(`- ${name}: ${c.pending} / ${c.ackPending}`);
    lines.push(`- webhook queues: ${JSON.stringify(bl.webhookQueues)}`);
  }
  lines.push('', `Machine busy over the window: ${f(r.usage.machineBusyPercent)} % of all cores.`);
  lines.push(
    `Postgres: ${f(r.postgres.bytesGrowth / 1024)} KiB database growth, ${f(r.postgres.bytesPerMessage)} bytes per ` +
      'delivered message (both directions; includes retained outboxes and indexes).',
  );
  const raw = r.rawSignalOneCore;
  lines.push(
    `Raw libsignal on one core (same run): ${f(raw.dec)} decrypts/s, ${f(raw.enc)} encrypts/s. ` +
      `Relay inbound = ${f(100 * r.fractionOfRaw.inbound, 1)} % of the raw decrypt rate, outbound = ` +
      `${f(100 * r.fractionOfRaw.outbound, 1)} % of the raw encrypt rate.`,
  );
  const all = r.rawSignalAllCores;
  if (all)
    lines.push(
      `Raw libsignal on all ${all.threads} cores at once (same run, nothing else running): ${f(all.dec)} decrypts/s, ` +
        `${f(all.enc)} encrypts/s in total; the most this machine can do with libsignal alone.`,
    );
  if (r.loopback)
    lines.push(
      `A round trip between two processes over loopback TCP (same run, idle machine): ${f(r.loopback.wallUs)} µs, ` +
        `${f(r.loopback.cpuUs)} µs of CPU for both ends together: the least any NATS message or Postgres statement costs here.`,
    );
  for (const [service, p] of Object.entries(r.profiles ?? {})) {
    lines.push(
      '',
      `Profile of ${service} (self time over the whole run, ${f(p.busyMs / 1000, 1)} s busy):`,
      '',
    );
    lines.push('| package / file | % | function | % |', '| --- | --- | --- | --- |');
    for (let i = 0; i < Math.max(p.byPackage.length, p.byFunction.length); i++) {
      const a = p.byPackage[i];
      const b = p.byFunction[i];
      const cell = (x) => (x ? `\`${x.name.replaceAll('|', '\\|')}\` | ${f(x.percent, 1)}` : ' | ');
      lines.push(`| ${cell(a)} | ${cell(b)} |`);
    }
  }
  return lines.join('\n') + '\n';
}

export function writeReports(root, result, log) {
  const at = new Date().toISOString();
  const r = { at, machine: machine(), ...result };
  const dir = join(root, 'docs/reports');
  mkdirSync(dir, { recursive: true });
  const stamp = at.replace(/[:.]/g, '-').slice(0, 19);
  const md = markdown(r);
  writeFileSync(join(dir, `relay-bench-${stamp}.json`), JSON.stringify(r, null, 2) + '\n');
  writeFileSync(join(dir, `relay-bench-${stamp}.md`), md);
  process.stdout.write('\n' + md + '\n');
  log(`reports written to docs/reports/relay-bench-${stamp}.{json,md}`);
}
