import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { APP_LOGGER, MicroBatcher, NatsBus, type ConsumerHandle } from '@relay/platform';
import type { OutboundRequest } from '@relay/protocol';
import type { Logger } from 'pino';
import { CryptoServices } from './services';
import type { InboundInput, InboundOutcome } from './inbound/inbound.processor';

/**
 * Wires the NATS surface to the services: thin handlers only. Inbound envelopes and outbound requests
 * go through micro-batchers; each handler resolves (and the bus acks its message) only after the
 * batch's transaction committed and its events were published.
 */
@Injectable()
export class CryptoRuntime
  implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly handles: ConsumerHandle[] = [];

  constructor(
    @Inject(CryptoServices) private readonly s: CryptoServices,
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(APP_LOGGER) private readonly log: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const { config } = this.s;
    const inbound = new MicroBatcher<InboundInput, InboundOutcome>(
      (items) => this.s.inbound.process(items),
      config.CRYPTO_BATCH_SIZE,
      config.CRYPTO_BATCHES_IN_FLIGHT,
    );
    const outbound = new MicroBatcher<OutboundRequest, number>(
      (items) => this.s.outbound.process(items),
      config.CRYPTO_BATCH_SIZE,
      config.CRYPTO_BATCHES_IN_FLIGHT,
    );
    // A short ack wait redelivers quickly what a dead process held; live slow batches say "in progress".
    const inProgress = Math.max(250, Math.floor(config.CRYPTO_ACK_WAIT_MS / 3));
    this.bus.respond('crypto.business_bundle', (req) => this.s.bundles.bundle(req));
    // Inbound and outbound handlers are idempotent (outbox), so acks are not confirmed: a lost ack only
    // means a redelivery that re-publishes from the outbox, and it saves a round trip per message.
    this.handles.push(
      await this.bus.consume(
        'business.number_registered',
        { durable: 'crypto-provision', concurrency: 4 },
        async (e) => {
          await this.s.provisioning.provision(e.phone_number_id);
        },
      ),
      await this.bus.consume('business.erase_requested', { durable: 'crypto-erase' }, async (e) => {
        const counts = await this.s.erase.erase(e);
        await this.bus.publish(
          'business.erase_completed',
          { service: 'crypto' },
          { request_id: e.request_id, service: 'crypto', counts, at: new Date().toISOString() },
          { msgId: `erase.${e.request_id}.crypto` },
        );
        this.log.info({ request_id: e.request_id, scope: e.scope, counts }, 'erasure completed');
      }),
      await this.bus.consume(
        'device.envelope',
        {
          durable: 'crypto-inbound',
          concurrency: config.CRYPTO_CONCURRENCY,
          ackWaitMs: config.CRYPTO_ACK_WAIT_MS,
          inProgressEveryMs: inProgress,
          confirmAcks: false,
        },
        async (env, meta) => {
          await inbound.add({ env, seq: meta.streamSeq, prev: meta.prevSubjectSeq });
        },
      ),
      await this.bus.consume(
        'outbound.request',
        {
          durable: 'crypto-outbound',
          concurrency: config.CRYPTO_CONCURRENCY,
          ackWaitMs: config.CRYPTO_ACK_WAIT_MS,
          inProgressEveryMs: inProgress,
          confirmAcks: false,
        },
        async (e) => {
          await outbound.add(e);
        },
      ),
    );
    this.s.maintenance.start();
    if (config.MASTER_KEY_PREVIOUS) {
      // Online master-key rotation: rewrap every data key under MASTER_KEY while old keys still unwrap.
      this.s.vault
        .rotateMasterKey()
        .then((r) => this.log.info(r, 'data keys rewrapped under the current master key'))
        .catch((err: Error) => this.log.error({ err: err.message }, 'master key rotation failed'));
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all(this.handles.map((h) => h.stop()));
    await this.s.maintenance.stop();
    await this.s.provisioning.idle();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.s.engine.close();
  }
}
