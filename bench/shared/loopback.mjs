// The machine's price of one round trip between two processes over loopback TCP: what every NATS
// publish, acknowledgement and Postgres statement costs at least, before any work. On a VM this is
// far above bare metal (each wake-up of a process on another vCPU goes through the hypervisor), and
// it is the unit the relay's per-message cost is made of (see the relay report's syscalls per message).
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const TICK_US = 10_000; // USER_HZ 100

function cpuUs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}

/** n ping-pongs of a 200-byte message with an echo server in another process. */
export async function loopbackRoundTrip(n = 20_000) {
  const child = fork(fileURLToPath(import.meta.url), ['echo-server'], { stdio: 'ignore' });
  try {
    const port = await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('error', reject);
    });
    const c = net.connect(port, '127.0.0.1');
    c.setNoDelay(true);
    await new Promise((resolve, reject) => {
      c.once('connect', resolve);
      c.once('error', reject);
    });
    const buf = Buffer.alloc(200, 1);
    const t0 = performance.now();
    const a0 = cpuUs(process.pid);
    const b0 = cpuUs(child.pid);
    let i = 0;
    await new Promise((done) => {
      c.on('data', () => (++i >= n ? done() : c.write(buf)));
      c.write(buf);
    });
    const wallUs = ((performance.now() - t0) * 1000) / n;
    const cpu = (cpuUs(process.pid) - a0 + cpuUs(child.pid) - b0) / n;
    c.destroy();
    return { roundTrips: n, wallUs, cpuUs: cpu };
  } finally {
    child.kill();
  }
}

if (process.argv[2] === 'echo-server') {
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('data', (d) => s.write(d));
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
}
