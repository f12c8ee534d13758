import {
  Global,
  Inject,
  Injectable,
  Module,
  type BeforeApplicationShutdown,
  type DynamicModule,
} from '@nestjs/common';
import { connect, type NatsConnection } from 'nats';
import type { Logger } from 'pino';
import type { ServiceName } from '@relay/protocol';
import { NatsBus } from './bus';
import { ensureStreams } from './streams';
import { APP_LOGGER, BASE_CONFIG, METRICS_REGISTRY, READINESS } from '../tokens';
import type { BaseConfig } from '../config/config';
import type { Registry } from 'prom-client';
import type { ReadinessRegistry } from '../http/readiness';
import { redactUrl } from '../logging/logger';

export async function connectNats(config: BaseConfig, name: string): Promise<NatsConnection> {
  return connect({
    servers: config.NATS_URL.split(','),
    name,
    user: config.NATS_USER,
    pass: config.NATS_PASSWORD,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    timeout: 5000,
    // nats.js otherwise captures a stack trace (new Error()) for every request and JetStream publish,
    // which profiled as the largest single CPU cost of the gateway's delivery path.
    noAsyncTraces: true,
  });
}

@Injectable()
class NatsLifecycle implements BeforeApplicationShutdown {
  constructor(
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(BASE_CONFIG) private readonly config: BaseConfig,
  ) {}
  async beforeApplicationShutdown(): Promise<void> {
    await this.bus.close(this.config.SHUTDOWN_TIMEOUT_MS);
  }
}

/** Connects to NATS, provisions the streams idempotently and provides the typed bus. */
@Global()
@Module({})
export class NatsModule {
  static forService(service: ServiceName): DynamicModule {
    return {
      module: NatsModule,
      providers: [
        {
          provide: NatsBus,
          inject: [BASE_CONFIG, APP_LOGGER, METRICS_REGISTRY, READINESS],
          useFactory: async (
            config: BaseConfig,
            log: Logger,
            registry: Registry,
            readiness: ReadinessRegistry,
          ) => {
            const nc = await connectNats(config, `${service}-${process.pid}`);
            log.info(
              { nats: redactUrl(config.NATS_URL), root: config.NATS_SUBJECT_ROOT },
              'connected to NATS',
            );
            void (async () => {
              for await (const s of nc.status()) log.info({ nats_status: s.type }, 'nats status');
            })();
            const jsm = await nc.jetstreamManager();
            await ensureStreams(jsm, {
              root: config.NATS_SUBJECT_ROOT,
              retentionDays: config.RETENTION_DAYS,
              replicas: config.NATS_STREAM_REPLICAS,
            });
            readiness.register('nats', async () => {
              if (nc.isClosed()) throw new Error('closed');
              await nc.flush();
            });
            return new NatsBus(nc, nc.jetstream(), jsm, config.NATS_SUBJECT_ROOT, service, log, registry);
          },
        },
        NatsLifecycle,
      ],
      exports: [NatsBus],
    };
  }
}
