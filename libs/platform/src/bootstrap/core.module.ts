import { Global, Module, type DynamicModule } from '@nestjs/common';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from 'pino';
import { APP_CONFIG, APP_LOGGER, BASE_CONFIG, CLOCK, METRICS_REGISTRY, READINESS } from '../tokens';
import { ReadinessRegistry } from '../http/readiness';
import { HealthController } from '../http/health.controller';
import { systemClock } from '../clock';
import type { BaseConfig } from '../config/config';

/** Config, logger, metrics, readiness and clock for a service; health endpoints included. */
@Global()
@Module({})
export class CoreModule {
  static register(service: string, config: BaseConfig, logger: Logger): DynamicModule {
    const registry = new Registry();
    registry.setDefaultLabels({ service });
    collectDefaultMetrics({ register: registry });
    return {
      module: CoreModule,
      controllers: [HealthController],
      providers: [
        { provide: BASE_CONFIG, useValue: config },
        { provide: APP_CONFIG, useValue: config },
        { provide: APP_LOGGER, useValue: logger },
        { provide: METRICS_REGISTRY, useValue: registry },
        { provide: READINESS, useValue: new ReadinessRegistry() },
        { provide: CLOCK, useValue: systemClock },
      ],
      exports: [BASE_CONFIG, APP_CONFIG, APP_LOGGER, METRICS_REGISTRY, READINESS, CLOCK],
    };
  }
}
