import { Counter, Histogram, Registry } from 'prom-client';

/**
 * What crypto's hot paths do, for operators (and the benchmark): how envelopes end, how often a batch
 * had to read a session's envelopes back from the stream or wait for another batch's session lock, and
 * how many events went out again from the outbox (redeliveries, ciphertexts behind in DELIVERY).
 */
export class CryptoMetrics {
  readonly envelopes: Counter<'outcome'>;
  readonly readBacks: Counter;
  readonly republished: Counter<'direction'>;
  readonly lockWait: Histogram<'direction'>;

  constructor(registry: Registry = new Registry()) {
    this.envelopes = new Counter({
      name: 'relay_crypto_envelopes_total',
      help: 'Device envelopes by outcome: decrypted, failed, duplicate (already processed), read_back (applied from the stream before a later one)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.readBacks = new Counter({
      name: 'relay_crypto_read_backs_total',
      help: 'Sessions whose envelopes were read back from the stream (their chain to the cursor was broken)',
      registers: [registry],
    });
    this.republished = new Counter({
      name: 'relay_crypto_republished_total',
      help: 'Events published again from the outbox (redelivered inputs, ciphertexts not yet marked published)',
      labelNames: ['direction'],
      registers: [registry],
    });
    this.lockWait = new Histogram({
      name: 'relay_crypto_session_lock_seconds',
      help: "Time to lock a batch's sessions (waits while another batch holds one of them)",
      labelNames: ['direction'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    });
  }
}
