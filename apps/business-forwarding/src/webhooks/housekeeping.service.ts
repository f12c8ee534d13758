import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { APP_LOGGER, CLOCK, type Clock } from '@relay/platform';
import { BF_CONFIG } from '../common/tokens';
import type { BusinessForwardingConfig } from '../config';
import { OutboundMessagesRepository } from './outbound-messages.repository';
import { OutboxRepository } from './outbox.repository';

const S = 'business_forwarding';
const DAY_MS = 24 * 3600_000;
const INTERVAL_MS = 10 * 60_000;

/**
 * Retention: delivered/dead webhook events and attempts, sent-message records and user identifiers
 * leave after RETENTION_DAYS; windows after 2 days; abuse reports after the 7-day quality window.
 * Idempotent and safe to run on every replica.
 */
@Injectable()
export class HousekeepingService implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(BF_CONFIG) private readonly config: BusinessForwardingConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(APP_LOGGER) private readonly log: Logger,
    @Inject(DataSource) private readonly ds: DataSource,
    private readonly outbox: OutboxRepository,
    private readonly outbound: OutboundMessagesRepository,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(
      () => void this.run().catch((err: Error) => this.log.warn({ err: err.message }, 'housekeeping failed')),
      INTERVAL_MS,
    );
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async run(): Promise<void> {
    const now = this.clock.now().getTime();
    const retention = new Date(now - this.config.RETENTION_DAYS * DAY_MS);
    await this.outbox.expire(new Date(now));
    await this.outbox.purge(retention);
    await this.outbound.purge(retention);
    await this.ds.query(`DELETE FROM ${S}.user_windows WHERE last_inbound_at < $1`, [
      new Date(now - 2 * DAY_MS),
    ]);
    await this.ds.query(`DELETE FROM ${S}.abuse_reports WHERE at < $1`, [new Date(now - 8 * DAY_MS)]);
  }
}
