import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';

export const TEST_NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/** A subject root of its own for one test file, so runs and files never see each other's traffic. */
export function testSubjectRoot(label = 't'): string {
  return `t${label
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(0, 12)}${randomBytes(4).toString('hex')}`;
}

export async function connectTestNats(): Promise<NatsConnection> {
  return connect({ servers: TEST_NATS_URL, name: 'jest' });
}

/** Deletes every stream a test root created (<ROOT>_<KEY>, and key-value buckets KV_<root>_<bucket>). */
export async function deleteStreams(root: string): Promise<void> {
  const nc = await connectTestNats();
  try {
    const jsm = await nc.jetstreamManager();
    const prefix = `${root.toUpperCase().replace(/-/g, '_')}_`;
    // Key-value buckets of the root (the gateway's rate limits) are streams named KV_<bucket>.
    const kvPrefix = `KV_${root.replace(/[^A-Za-z0-9_-]/g, '_')}_`;
    for await (const s of jsm.streams.list()) {
      const name = s.config.name;
      if (name.startsWith(prefix) || name.startsWith(kvPrefix)) await jsm.streams.delete(name);
    }
  } finally {
    await nc.close();
  }
}
