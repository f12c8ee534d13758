// Where a backlog sits at the end of the window: messages waiting in each JetStream consumer of this
// run's subject root, and each business's webhook queue (business-forwarding's operator API).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { connect } = require('nats');

export async function backlog(natsUrl, subjectRoot, biz) {
  const nc = await connect({ servers: natsUrl });
  const consumers = {};
  try {
    const jsm = await nc.jetstreamManager();
    for await (const s of jsm.streams.list()) {
      if (!s.config.name.toLowerCase().startsWith(subjectRoot.toLowerCase())) continue;
      for await (const c of jsm.consumers.list(s.config.name))
        consumers[`${s.config.name}/${c.name}`] = { pending: c.num_pending, ackPending: c.num_ack_pending };
    }
  } finally {
    await nc.close();
  }
  const webhookQueues = {};
  for (const b of biz.list) {
    // Not through the load's connection pool: that one may be full of queued sends.
    const r = await fetch(`${biz.relay.url(1)}/admin/v1/businesses/${b.waba}/webhook`, {
      headers: { authorization: `Bearer ${biz.relay.operatorToken}` },
      signal: AbortSignal.timeout(10_000),
    });
    webhookQueues[b.waba] = (await r.json()).queue;
  }
  return { consumers, webhookQueues };
}
