import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { rows, withRunner } from '../common/sql';
import type { OutboxRepository } from '../store/outbox.repository';
import type { PreKeyRepository } from '../store/prekey.repository';
import type { ProvisioningService } from './provisioning.service';

export interface MaintenanceSettings {
  intervalMs: number;
  rotationHours: number;
  graceHours: number;
  threshold: number;
  outboxRetentionHours: number;
}

/**
 * Periodic key upkeep, safe on every replica at once (the work itself takes the identity row with SKIP
 * LOCKED): rotate signed prekeys that are due, refill low pools, drop expired keys and old outbox rows.
 */
export class KeyMaintenance {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly ds: DataSource,
    private readonly provisioning: ProvisioningService,
    private readonly prekeys: PreKeyRepository,
    private readonly outbox: OutboxRepository,
    private readonly s: MaintenanceSettings,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (!this.running)
        this.running = this.runOnce()
          .catch((err: Error) => this.log.warn({ err: err.message }, 'key maintenance failed'))
          .finally(() => (this.running = undefined));
    }, this.s.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  async runOnce(): Promise<void> {
    const due = await withRunner(this.ds, (r) =>
      rows<{ pn: string; rotate: boolean; low: boolean }>(
        r,
        `SELECT i.phone_number_id AS pn,
           i.signed_rotated_at < now() - make_interval(secs => $1) AS rotate,
           (SELECT count(*) FROM crypto.prekeys p WHERE p.phone_number_id = i.phone_number_id AND p.issued_at IS NULL) < $2
           OR (SELECT count(*) FROM crypto.kyber_prekeys k WHERE k.phone_number_id = i.phone_number_id AND k.issued_at IS NULL AND NOT k.last_resort) < $2 AS low
         FROM crypto.identities i`,
        [this.s.rotationHours * 3600, this.s.threshold],
      ),
    );
    for (const d of due) {
      if (d.rotate) await this.provisioning.rotate(d.pn);
      if (d.low) await this.provisioning.refill(d.pn);
    }
    await withRunner(this.ds, async (r) => {
      await this.prekeys.dropExpired(r, this.s.graceHours);
      await this.outbox.purge(r, this.s.outboxRetentionHours);
    });
  }
}
