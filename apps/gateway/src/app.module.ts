import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import type { Logger } from 'pino';
import { APP_LOGGER, DatabaseModule, NatsModule } from '@relay/platform';
import type { GatewayConfig } from './config';
import { gatewayDataSource } from './data-source';
import { DeviceApiErrorFilter } from './http/error.filter';
import { IpRateLimitGuard } from './http/ip-rate-limit.guard';
import { RateLimiter } from './ratelimit/rate-limiter';
import { DeviceAuthService } from './auth/device-auth.service';
import { DeviceAuthGuard } from './auth/device-auth.guard';
import { VERIFICATION_SENDER, verificationSenderFor } from './accounts/verification-sender';
import { VerificationService } from './accounts/verification.service';
import { DevicesService } from './accounts/devices.service';
import { AccountsController } from './accounts/accounts.controller';
import { KeyVerifier } from './signal/key-verifier';
import { KeysService } from './keys/keys.service';
import { BundlesService } from './keys/bundles.service';
import { BusinessBundleService } from './keys/business-bundle.service';
import { DeviceBundlesResponder } from './keys/device-bundles.responder';
import { KeysController } from './keys/keys.controller';
import { ConnectionRegistry } from './ws/connection-registry';
import { FrameRouter } from './ws/frame-router';
import { DeviceWebSocketServer } from './ws/ws-server';
import { DeliveryService } from './delivery/delivery.service';
import { InboundService } from './delivery/inbound.service';
import { FailuresConsumer } from './delivery/failures.consumer';
import { AbuseService } from './abuse/abuse.service';
import { EraseConsumer } from './abuse/erase.consumer';

@Module({})
export class AppModule {
  static register(config: GatewayConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        NatsModule.forService('gateway'),
        DatabaseModule.forDataSource(() => gatewayDataSource(config.DATABASE_URL, config.DATABASE_POOL_SIZE)),
      ],
      controllers: [AccountsController, KeysController],
      providers: [
        { provide: APP_FILTER, useClass: DeviceApiErrorFilter },
        {
          provide: VERIFICATION_SENDER,
          inject: [APP_LOGGER],
          useFactory: (log: Logger) => verificationSenderFor(config, log),
        },
        { provide: KeyVerifier, useValue: new KeyVerifier() },
        RateLimiter,
        IpRateLimitGuard,
        DeviceAuthService,
        DeviceAuthGuard,
        VerificationService,
        DevicesService,
        KeysService,
        BundlesService,
        BusinessBundleService,
        DeviceBundlesResponder,
        ConnectionRegistry,
        DeliveryService,
        InboundService,
        AbuseService,
        FrameRouter,
        DeviceWebSocketServer,
        FailuresConsumer,
        EraseConsumer,
      ],
    };
  }
}
