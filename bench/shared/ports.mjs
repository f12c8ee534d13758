// Ports handed to a process that binds them later. Taken from below the ephemeral range, where an
// outgoing connection cannot grab one between the check and the child's bind (libs/testing does the
// same for the tests).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const FLOOR = 10_000;

function ephemeralLow() {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > FLOOR + 2_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

const isFree = (port) =>
  new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });

/** The first of `n` consecutive free ports. */
export async function freePorts(n = 1) {
  const top = ephemeralLow() - n;
  for (;;) {
    const base = FLOOR + Math.floor(Math.random() * (top - FLOOR));
    if ((await Promise.all(Array.from({ length: n }, (_, i) => isFree(base + i)))).every(Boolean))
      return base;
  }
}

export const freePort = () => freePorts(1);
