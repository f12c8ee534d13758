// Per-process CPU and memory from Linux /proc (the relay's services, NATS, Postgres, this script).
import { readdirSync, readFileSync } from 'node:fs';

const TICK = 100; // USER_HZ on Linux

/** utime + stime of a process in seconds, or 0 when it is gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return 0;
  }
}

/**
 * Read and write system calls a process has made (/proc/PID/io: syscr, syscw). On one machine every
 * socket write is a round trip's half, and on a VM each one that wakes a process on another vCPU is
 * dear, so these count a service's round trips. Zeros when the file cannot be read.
 */
export function ioCalls(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/io`, 'utf8');
    const n = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0);
    return { reads: n('syscr'), writes: n('syscw') };
  } catch {
    return { reads: 0, writes: 0 };
  }
}

/** Resident and peak resident memory in MiB. */
export function memory(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0);
    return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
  } catch {
    return { rssMiB: 0, peakMiB: 0 };
  }
}

/** Pids whose command name starts with `name` (nats-server, postgres). */
export function pidsNamed(name) {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/comm`, 'utf8').trim().startsWith(name);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Machine-wide busy and total jiffies (for the machine's CPU use over the window). */
export function machineCpu() {
  const v = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + v[4];
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** A sampler of a named set of pid groups: CPU seconds between start() and stop(), peak RSS. */
export class ProcSampler {
  constructor(groups) {
    this.groups = groups; // name -> () => pid[]
    this.peak = new Map();
  }
  read() {
    const out = {};
    for (const [name, pids] of Object.entries(this.groups)) {
      const list = pids();
      const perPid = new Map(list.map((p) => [p, cpuSeconds(p)]));
      out[name] = {
        cpu: [...perPid.values()].reduce((a, c) => a + c, 0),
        perPid,
        io: new Map(list.map((p) => [p, ioCalls(p)])),
        rss: list.reduce((a, p) => a + memory(p).rssMiB, 0),
      };
    }
    return out;
  }
  start() {
    this.t0 = Date.now();
    this.c0 = this.read();
    this.m0 = machineCpu();
    this.timer = setInterval(() => {
      try {
        for (const [name, v] of Object.entries(this.read()))
          this.peak.set(name, Math.max(this.peak.get(name) ?? 0, v.rss));
      } catch {
        // a sample missed (e.g. out of file descriptors) only lowers the peak's precision
      }
    }, 1000);
  }
  stop() {
    clearInterval(this.timer);
    const secs = (Date.now() - this.t0) / 1000;
    const now = this.read();
    const m1 = machineCpu();
    const rows = {};
    for (const [name, v] of Object.entries(now)) {
      // Per process: one that exited meanwhile drops out (its CPU can no longer be read) instead of
      // making the difference negative; one that started meanwhile counts from zero.
      const before = this.c0[name]?.perPid ?? new Map();
      let cpu = 0;
      for (const [pid, c] of v.perPid) cpu += Math.max(0, c - (before.get(pid) ?? 0));
      const io0 = this.c0[name]?.io ?? new Map();
      let reads = 0;
      let writes = 0;
      for (const [pid, c] of v.io) {
        reads += Math.max(0, c.reads - (io0.get(pid)?.reads ?? 0));
        writes += Math.max(0, c.writes - (io0.get(pid)?.writes ?? 0));
      }
      rows[name] = {
        cpuSeconds: cpu,
        readCalls: reads,
        writeCalls: writes,
        cpuPercentOfOneCore: (100 * cpu) / secs,
        rssMiB: v.rss,
        peakRssMiB: Math.max(this.peak.get(name) ?? 0, v.rss),
      };
    }
    const machineBusy = (100 * (m1.busy - this.m0.busy)) / (m1.total - this.m0.total);
    return { rows, machineBusyPercent: machineBusy };
  }
}
