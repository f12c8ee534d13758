import type { DataSource } from 'typeorm';
import type { Clock, NatsBus } from '@relay/platform';
import type { KeysRepository } from '../store/keys.repository';
import type { OutboxRepository } from '../store/outbox.repository';
import type { SessionRepository } from '../store/session.repository';
import type { CryptoMetrics } from './metrics';
import type { SessionBatch } from './session-batch';

/** What the inbound and outbound processors both work with; the composition root builds it once. */
export interface ProcessorDeps {
  ds: DataSource;
  bus: NatsBus;
  sessions: SessionRepository;
  keys: KeysRepository;
  outbox: OutboxRepository;
  batch: SessionBatch;
  clock: Clock;
  metrics: CryptoMetrics;
}
