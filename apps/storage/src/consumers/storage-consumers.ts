import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import type { Logger } from 'pino';
import { APP_CONFIG, APP_LOGGER, NatsBus } from '@relay/platform';
import { streamName, type EventName } from '@relay/protocol';
import type { StorageConfig } from '../config';
import { Eraser } from '../erase/eraser';
import { MessageWriter, inboundRecord, outboundRecord } from '../messages/message-writer';
import { StatusWriter, failureRecord, statusRecord } from '../messages/status-writer';
import { NumberRegistry } from '../numbers/number-registry';
import { PendingQueue } from '../retransmission/pending-queue';
import { PendingWriter } from '../retransmission/pending-writer';

const DRAIN_WAIT_MS = 10_000;

/**
 * Wires NATS to the domain services; handlers stay one line. Number lifecycle is consumed first and its
 * backlog drained before messages flow, so a restarted storage routes a regional number's backlog to its
 * region rather than to the default database.
 */
@Injectable()
export class StorageConsumers implements OnApplicationBootstrap {
  constructor(
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(APP_CONFIG) private readonly config: StorageConfig,
    @Inject(APP_LOGGER) private readonly log: Logger,
    @Inject(NumberRegistry) private readonly numbers: NumberRegistry,
    @Inject(MessageWriter) private readonly messages: MessageWriter,
    @Inject(StatusWriter) private readonly statuses: StatusWriter,
    @Inject(PendingWriter) private readonly pendingWriter: PendingWriter,
    @Inject(PendingQueue) private readonly pending: PendingQueue,
    @Inject(Eraser) private readonly eraser: Eraser,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.consume('business.number_registered', { durable: 'storage-number-registered' }, (e) =>
      this.numbers.registered(e),
    );
    await this.bus.consume('business.number_deregistered', { durable: 'storage-number-deregistered' }, (e) =>
      this.numbers.deregistered(e),
    );
    await this.waitDrained(['business.number_registered', 'business.number_deregistered']);

    const concurrency = this.config.CONSUMER_CONCURRENCY;
    const ackWaitMs = this.config.CONSUMER_ACK_WAIT_MS;
    await this.bus.consume('inbound.message', { durable: 'storage-inbound', concurrency, ackWaitMs }, (m) =>
      this.messages.write(inboundRecord(m)),
    );
    await this.bus.consume('outbound.request', { durable: 'storage-outbound', concurrency, ackWaitMs }, (m) =>
      this.messages.write(outboundRecord(m)),
    );
    await this.bus.consume('status.update', { durable: 'storage-status', concurrency, ackWaitMs }, (s) =>
      this.statuses.write(statusRecord(s)),
    );
    await this.bus.consume(
      'outbound.failure',
      { durable: 'storage-outbound-failure', concurrency, ackWaitMs },
      (f) => this.statuses.write(failureRecord(f)),
    );
    await this.bus.consume(
      'delivery.ciphertext',
      { durable: 'storage-delivery', concurrency, ackWaitMs },
      (c, meta) => this.pendingWriter.write(c, meta.streamSeq, meta.prevSubjectSeq),
    );
    await this.bus.consume(
      'business.erase_requested',
      { durable: 'storage-erase', ackWaitMs: Math.max(ackWaitMs, 60_000) },
      (r) => this.eraser.erase(r),
    );

    this.bus.respond('storage.pending', async (req) => ({
      items: await this.pending.list(req.to, req.after_seq ?? 0, req.limit, 'gateway'),
    }));
    this.bus.respond('storage.ack', async (req) => ({ removed: await this.pending.ack(req.to, req.wamids) }));
    // The service counts as started once the server has our RPC subscriptions.
    await this.bus.nc.flush();
  }

  /** Waits (bounded) until the given durable consumers have nothing pending or unacknowledged. */
  private async waitDrained(names: EventName[]): Promise<void> {
    const durables: Record<string, string> = {
      'business.number_registered': 'storage-number-registered',
      'business.number_deregistered': 'storage-number-deregistered',
    };
    const stream = streamName(this.bus.root, 'BUSINESS');
    const deadline = Date.now() + DRAIN_WAIT_MS;
    while (Date.now() < deadline) {
      const infos = await Promise.all(names.map((n) => this.bus.jsm.consumers.info(stream, durables[n])));
      if (infos.every((i) => i.num_pending === 0 && i.num_ack_pending === 0)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    this.log.warn('number lifecycle backlog not drained in time; starting message consumers anyway');
  }
}
