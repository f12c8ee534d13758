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

/** Deletes every stream a test root created (streams are named <ROOT>_<KEY>). */
export async function deleteStreams(root: string): Promise<void> {
  const nc = await connectTestNats();
  try {
    const jsm = await nc.jetstreamManager();
    const prefix = `${root.toUpperCase().replace(/-/g, '_')}_`;
    for await (const s of jsm.streams.list()) {
      if (s.config.name.startsWith(prefix)) await jsm.streams.delete(s.config.name);
    }
  } finally {
    await nc.close();
  }
}
