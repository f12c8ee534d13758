import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { NatsBus } from '@relay/platform';
import { BundlesService } from './bundles.service';

/** Answers crypto's 'gateway.device_bundles' RPC. */
@Injectable()
export class DeviceBundlesResponder implements OnApplicationBootstrap {
  constructor(
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(BundlesService) private readonly bundles: BundlesService,
  ) {}

  onApplicationBootstrap(): void {
    this.bus.respond('gateway.device_bundles', (req) => this.bundles.take(req));
  }
}
