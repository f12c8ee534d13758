import { connect, type NatsConnection } from 'nats';
import pino from 'pino';
import { Registry } from 'prom-client';
import { eventSubject, streamName, type EventPayload } from '@relay/protocol';
import { TEST_NATS_URL, deleteStreams, testSubjectRoot, waitFor } from '@relay/testing';
import { NatsBus, PREV_SUBJECT_SEQ_HEADER, directGet, type EventMeta } from './bus';
import { JetStreamPublishError } from './js-publisher';
import { ensureStreams } from './streams';
import { SubjectSequencer } from './subject-sequencer';

const root = testSubjectRoot('seq');
let nc: NatsConnection;
let bus: NatsBus;

const PN = '1001';
// Users '49a', '49b', ... become E.164-like wa_ids; envelope ids are padded to the contract's 8 chars.
const wa = (user: string) => `4915100000${user.charCodeAt(2) - 96}`;
const session = (user: string) => ({ phone_number_id: PN, wa_id: wa(user), device_id: 1 });
const envelope = (user: string, id: string): EventPayload<'device.envelope'> => ({
  envelope_id: `envelope-${id}`,
  phone_number_id: PN,
  from: { wa_id: wa(user), device_id: 1 },
  type: 'whisper',
  ciphertext: Buffer.from(id).toString('base64'),
  received_at: new Date().toISOString(),
});

/** The stored messages of one session subject, in stream order, with the stamped predecessor. */
async function stored(waId: string): Promise<{ seq: number; prev: number | undefined; id: string }[]> {
  const jsm = await nc.jetstreamManager();
  const stream = streamName(root, 'DEVICE_ENVELOPES');
  const subject = eventSubject(root, 'device.envelope', session(waId));
  const out: { seq: number; prev: number | undefined; id: string }[] = [];
  for (let seq = 1; ;) {
    const m = await directGet(jsm)
      .getMessage(stream, { seq, next_by_subj: subject })
      .catch(() => null);
    if (!m) return out;
    const prev = m.header?.get(PREV_SUBJECT_SEQ_HEADER);
    const id = m.json<{ envelope_id: string }>().envelope_id.replace('envelope-', '');
    out.push({ seq: m.seq, prev: prev ? Number(prev) : undefined, id });
    seq = m.seq + 1;
  }
}

/** Each stored message names its real predecessor on the subject (0 for the first). */
function expectChained(msgs: { seq: number; prev: number | undefined }[]): void {
  msgs.forEach((m, i) => expect(m.prev).toBe(i === 0 ? 0 : msgs[i - 1].seq));
}

beforeAll(async () => {
  nc = await connect({ servers: TEST_NATS_URL });
  const jsm = await nc.jetstreamManager();
  await ensureStreams(jsm, { root, retentionDays: 30 });
  bus = new NatsBus(nc, nc.jetstream(), jsm, root, 'gateway', pino({ level: 'silent' }), new Registry());
});

afterAll(async () => {
  await bus.close(2000);
  await deleteStreams(root);
});

describe('SubjectSequencer on real JetStream', () => {
  it('stamps every message with its predecessor on the same subject, concurrent subjects interleaved', async () => {
    const seq = new SubjectSequencer(bus, 'device.envelope');
    await Promise.all(
      ['a1', 'b1', 'a2', 'b2', 'a3', 'c1', 'b3', 'a4'].map((id) =>
        seq.publish(session(`49${id[0]}`), envelope(`49${id[0]}`, id), { msgId: id }),
      ),
    );
    const a = await stored('49a');
    expect(a.map((m) => m.id)).toEqual(['a1', 'a2', 'a3', 'a4']);
    expectChained(a);
    expectChained(await stored('49b'));
    expectChained(await stored('49c'));
    // Interleaved subjects: a's predecessors are not simply seq - 1.
    expect(a.some((m, i) => i > 0 && m.seq !== a[i - 1].seq + 1)).toBe(true);
  });

  it('recovers when another publisher (another gateway) wrote on the subject meanwhile', async () => {
    const one = new SubjectSequencer(bus, 'device.envelope');
    const two = new SubjectSequencer(bus, 'device.envelope');
    await one.publish(session('49d'), envelope('49d', 'd1'), { msgId: 'd1' });
    await two.publish(session('49d'), envelope('49d', 'd2'), { msgId: 'd2' });
    // `one` still believes d1 is the newest: JetStream refuses, and the retry names d2.
    await one.publish(session('49d'), envelope('49d', 'd3'), { msgId: 'd3' });
    await two.publish(session('49d'), envelope('49d', 'd4'), { msgId: 'd4' });
    const d = await stored('49d');
    expect(d.map((m) => m.id)).toEqual(['d1', 'd2', 'd3', 'd4']);
    expectChained(d);
  });

  it('a duplicate publish stores nothing and the next message still names the right predecessor', async () => {
    const seq = new SubjectSequencer(bus, 'device.envelope');
    await seq.publish(session('49e'), envelope('49e', 'e1'), { msgId: 'e1' });
    await seq.publish(session('49e'), envelope('49e', 'e2'), { msgId: 'e2' });
    const dup = await seq.publish(session('49e'), envelope('49e', 'e1'), { msgId: 'e1' });
    expect(dup.duplicate).toBe(true);
    await seq.publish(session('49e'), envelope('49e', 'e3'), { msgId: 'e3' });
    const e = await stored('49e');
    expect(e.map((m) => m.id)).toEqual(['e1', 'e2', 'e3']);
    expectChained(e);
  });

  it('hands the predecessor to consumers in the event meta', async () => {
    const seq = new SubjectSequencer(bus, 'device.envelope');
    const seen: EventMeta[] = [];
    const handle = await bus.consume(
      'device.envelope',
      { durable: 'seq-meta', filter: [PN, wa('49f')] },
      async (_e, meta) => {
        seen.push(meta);
      },
    );
    await seq.publish(session('49f'), envelope('49f', 'f1'), { msgId: 'f1' });
    await seq.publish(session('49f'), envelope('49f', 'f2'), { msgId: 'f2' });
    await waitFor(async () => seen.length === 2, 10_000);
    await handle.stop();
    expect(seen[0].prevSubjectSeq).toBe(0);
    expect(seen[1].prevSubjectSeq).toBe(seen[0].streamSeq);
  });
});

describe('JsPublisher errors', () => {
  it("a refused expectation carries JetStream's error code; no stream is a 503", async () => {
    const wrong = await bus
      .publish('device.envelope', session('49g'), envelope('49g', 'g1'), { expectLastSubjectSeq: 12345 })
      .catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(JetStreamPublishError);
    expect((wrong as JetStreamPublishError).api_error?.err_code).toBe(10071);
    const other = new NatsBus(
      nc,
      nc.jetstream(),
      await nc.jetstreamManager(),
      testSubjectRoot('nostream'),
      'gateway',
      pino({ level: 'silent' }),
      new Registry(),
    );
    const none = await other
      .publish('device.envelope', session('49g'), envelope('49g', 'g1'), { timeoutMs: 2000 })
      .catch((e: unknown) => e);
    expect(none).toBeInstanceOf(JetStreamPublishError);
    expect((none as JetStreamPublishError).code).toBe('503');
  });
});
