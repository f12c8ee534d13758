import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { CLOCK, DatabaseModule, NatsModule, type Clock } from '@relay/platform';
import { AdminController } from './admin/admin.controller';
import { ErasureService } from './admin/erasure.service';
import { OperatorGuard } from './admin/operator.guard';
import { TenantAdminService } from './admin/tenant-admin.service';
import { WebhookAdminService } from './admin/webhook-admin.service';
import { BlockUsersService } from './cloud-api/block-users.service';
import { CloudApiController } from './cloud-api/cloud-api.controller';
import { PhoneNumberService } from './cloud-api/phone-number.service';
import { SendService } from './cloud-api/send.service';
import { CryptoAdapter } from './common/crypto.adapter';
import { ApiExceptionFilter } from './common/exception.filter';
import { BF_CONFIG, CRYPTO, RANDOM, WEBHOOK_HTTP, type RandomSource } from './common/tokens';
import type { BusinessForwardingConfig } from './config';
import { businessForwardingDataSource } from './data-source';
import { AbuseConsumer } from './limits/abuse.consumer';
import { LimitsRepository } from './limits/limits.repository';
import { LimitsService } from './limits/limits.service';
import { QualityService } from './limits/quality.service';
import { AuthService } from './tenancy/auth.service';
import { TenantCache } from './tenancy/tenant-cache.service';
import { CloudAuthGuard } from './tenancy/cloud-auth.guard';
import { DataKeys } from './tenancy/data-keys.service';
import { TenantRepository } from './tenancy/tenant.repository';
import { DispatchSignal } from './webhooks/dispatch-signal';
import { WebhookDispatcher } from './webhooks/dispatcher.service';
import { WebhookEventWriter } from './webhooks/event-writer.service';
import { NodeWebhookHttpClient, type WebhookHttpClient } from './webhooks/http-client';
import { HousekeepingService } from './webhooks/housekeeping.service';
import { InboundConsumer } from './webhooks/inbound.consumer';
import { OutboundMessagesRepository } from './webhooks/outbound-messages.repository';
import { OutboxRepository } from './webhooks/outbox.repository';
import { StatusConsumer } from './webhooks/status.consumer';
import { WebhookTargets } from './webhooks/webhook-targets';

/** Adapters a test may replace: time, jitter, the outbound HTTP client. */
export interface AppOverrides {
  clock?: Clock;
  random?: RandomSource;
  http?: WebhookHttpClient;
}

@Module({})
export class AppModule {
  static register(config: BusinessForwardingConfig, overrides: AppOverrides = {}): DynamicModule {
    const adapters: Provider[] = [
      { provide: BF_CONFIG, useValue: config },
      { provide: CRYPTO, useValue: new CryptoAdapter() },
      { provide: RANDOM, useValue: overrides.random ?? Math.random },
      { provide: WEBHOOK_HTTP, useValue: overrides.http ?? new NodeWebhookHttpClient() },
      ...(overrides.clock ? [{ provide: CLOCK, useValue: overrides.clock }] : []),
      { provide: APP_FILTER, useClass: ApiExceptionFilter },
    ];
    return {
      module: AppModule,
      imports: [
        NatsModule.forService('business-forwarding'),
        DatabaseModule.forDataSource(() =>
          businessForwardingDataSource(config.DATABASE_URL, config.DATABASE_POOL_SIZE),
        ),
      ],
      // Admin routes first: Express matches in registration order and /admin/v1/x would otherwise
      // look like /{version}/{phone-number-id}/x.
      controllers: [AdminController, CloudApiController],
      providers: [
        ...adapters,
        TenantRepository,
        TenantCache,
        DataKeys,
        AuthService,
        CloudAuthGuard,
        OperatorGuard,
        LimitsRepository,
        QualityService,
        LimitsService,
        AbuseConsumer,
        OutboxRepository,
        OutboundMessagesRepository,
        DispatchSignal,
        WebhookTargets,
        WebhookEventWriter,
        WebhookDispatcher,
        HousekeepingService,
        InboundConsumer,
        StatusConsumer,
        SendService,
        PhoneNumberService,
        BlockUsersService,
        TenantAdminService,
        WebhookAdminService,
        ErasureService,
      ],
    };
  }
}
