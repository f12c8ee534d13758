import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Ports handed to a process that binds them later (a spawned service, a NATS or Postgres server).
 *
 * A port the OS picks (listen on 0) comes from the ephemeral range, which every outgoing connection on
 * the machine also draws from: between the check and the child's bind, a test's client socket can take
 * it (seen in CI as EADDRINUSE on a service's port). So these come from below that range, where only
 * another explicit bind can collide, and each Jest worker draws from its own stripe.
 */
const FLOOR = 10_000;

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > FLOOR + 2_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

export function isPortFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

/** The first of `count` consecutive ports, all free now and outside the ephemeral range. */
export async function freePorts(count = 1): Promise<number> {
  const workers = 8;
  const worker = (Number(process.env.JEST_WORKER_ID ?? 0) || process.pid) % workers;
  const stripe = Math.floor((ephemeralLow() - FLOOR) / workers);
  const start = FLOOR + worker * stripe;
  for (let attempt = 0; attempt < 1_000; attempt++) {
    const base = start + Math.floor(Math.random() * (stripe - count));
    const ok = await Promise.all(Array.from({ length: count }, (_, i) => isPortFree(base + i)));
    if (ok.every(Boolean)) return base;
  }
  throw new Error(`no ${count} consecutive free ports between ${start} and ${start + stripe}`);
}

/** One free port outside the ephemeral range (see freePorts). */
export const freePort = (): Promise<number> => freePorts(1);
