import { connect, type NatsConnection } from 'nats';
import { TEST_NATS_URL, deleteStreams, testSubjectRoot } from './nats';

// Tests share one NATS server: what a test root created must be gone after deleteStreams, and nothing
// of another root may go with it.
let nc: NatsConnection;
beforeAll(async () => (nc = await connect({ servers: TEST_NATS_URL })));
afterAll(() => nc.close());

async function streamNames(): Promise<string[]> {
  const jsm = await nc.jetstreamManager();
  const names: string[] = [];
  for await (const s of jsm.streams.list()) names.push(s.config.name);
  return names;
}

it("deletes a root's streams and key-value buckets, and no other root's", async () => {
  const root = testSubjectRoot('delete');
  const other = testSubjectRoot('keep');
  const jsm = await nc.jetstreamManager();
  for (const r of [root, other]) {
    await jsm.streams.add({ name: `${r.toUpperCase()}_INBOUND`, subjects: [`${r}.v1.inbound.>`] });
    await nc.jetstream().views.kv(`${r}_gateway_rate_limits`);
  }
  await deleteStreams(root);
  const left = await streamNames();
  expect(left).not.toContain(`${root.toUpperCase()}_INBOUND`);
  expect(left).not.toContain(`KV_${root}_gateway_rate_limits`);
  expect(left).toContain(`${other.toUpperCase()}_INBOUND`);
  expect(left).toContain(`KV_${other}_gateway_rate_limits`);
  await deleteStreams(other);
  expect(await streamNames()).not.toContain(`KV_${other}_gateway_rate_limits`);
});
