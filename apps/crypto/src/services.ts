import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { Clock, NatsBus } from '@relay/platform';
import type { CryptoConfig } from './config';
import { SessionBatch } from './common/session-batch';
import { Vault } from './keys/vault';
import { SessionRepository } from './store/session.repository';
import { KeysRepository } from './store/keys.repository';
import { OutboxRepository } from './store/outbox.repository';
import { PreKeyRepository } from './store/prekey.repository';
import { InboundProcessor } from './inbound/inbound.processor';
import { OutboundProcessor } from './outbound/outbound.processor';
import { ProvisioningService } from './provisioning/provisioning.service';
import { KeyMaintenance } from './provisioning/key-maintenance';
import { BundleService } from './bundle/bundle.service';
import { EraseService } from './erase/erase.service';
import type { SignalEngine } from './signal/worker-pool';
import { CryptoMetrics } from './common/metrics';
import type { ProcessorDeps } from './common/processor-deps';

/** The crypto service's object graph (composition root), built once per process. */
export class CryptoServices {
  readonly vault: Vault;
  readonly sessions: SessionRepository;
  readonly keys: KeysRepository;
  readonly outbox: OutboxRepository;
  readonly prekeys: PreKeyRepository;
  /** What the processors share (a test builds a second processor on the same graph). */
  readonly processorDeps: ProcessorDeps;
  readonly inbound: InboundProcessor;
  readonly outbound: OutboundProcessor;
  readonly provisioning: ProvisioningService;
  readonly maintenance: KeyMaintenance;
  readonly bundles: BundleService;
  readonly erase: EraseService;

  constructor(
    readonly ds: DataSource,
    readonly bus: NatsBus,
    readonly engine: SignalEngine,
    readonly config: CryptoConfig,
    clock: Clock,
    log: Logger,
    readonly metrics = new CryptoMetrics(),
  ) {
    this.vault = Vault.local(ds, config.MASTER_KEY, config.MASTER_KEY_PREVIOUS ?? '');
    this.sessions = new SessionRepository(this.vault);
    this.keys = new KeysRepository(this.vault);
    this.outbox = new OutboxRepository(this.vault);
    this.prekeys = new PreKeyRepository(this.vault);
    const deps: ProcessorDeps = {
      ds,
      bus,
      sessions: this.sessions,
      keys: this.keys,
      outbox: this.outbox,
      batch: new SessionBatch(engine, this.sessions, this.keys),
      clock,
      metrics,
    };
    this.processorDeps = deps;
    this.inbound = new InboundProcessor(deps, log);
    this.outbound = new OutboundProcessor(deps, {
      rpcTimeoutMs: config.GATEWAY_RPC_TIMEOUT_MS,
      deviceListTtlMs: config.DEVICE_LIST_TTL_MS,
    });
    const pools = { poolSize: config.PREKEY_POOL_SIZE, threshold: config.PREKEY_REFILL_THRESHOLD };
    this.provisioning = new ProvisioningService(ds, engine, this.prekeys, this.vault, pools, log);
    this.maintenance = new KeyMaintenance(
      ds,
      this.provisioning,
      this.prekeys,
      this.outbox,
      {
        intervalMs: config.KEY_MAINTENANCE_INTERVAL_MS,
        rotationHours: config.SIGNED_PREKEY_ROTATION_HOURS,
        graceHours: config.SIGNED_PREKEY_GRACE_HOURS,
        threshold: config.PREKEY_REFILL_THRESHOLD,
        outboxRetentionHours: config.OUTBOX_RETENTION_HOURS,
      },
      log,
    );
    this.bundles = new BundleService(ds, this.prekeys, this.provisioning, config.PREKEY_REFILL_THRESHOLD);
    this.erase = new EraseService(ds, this.vault);
  }
}
