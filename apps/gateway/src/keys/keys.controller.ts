import { Body, Controller, Get, Inject, Param, Put, UseGuards } from '@nestjs/common';
import { PhoneNumberId, UploadKeysRequest } from '@relay/protocol';
import { parseInput } from '../http/parse';
import { IpRateLimitGuard } from '../http/ip-rate-limit.guard';
import { CurrentDevice, DeviceAuthGuard } from '../auth/device-auth.guard';
import type { AuthenticatedDevice } from '../auth/device-auth.service';
import { KeysService } from './keys.service';
import { BusinessBundleService } from './business-bundle.service';

@Controller('v1')
@UseGuards(IpRateLimitGuard, DeviceAuthGuard)
export class KeysController {
  constructor(
    @Inject(KeysService) private readonly keys: KeysService,
    @Inject(BusinessBundleService) private readonly businessBundles: BusinessBundleService,
  ) {}

  @Put('keys')
  upload(@CurrentDevice() device: AuthenticatedDevice, @Body() body: unknown) {
    return this.keys.upload(device, parseInput(UploadKeysRequest, body));
  }

  @Get('keys/count')
  count(@CurrentDevice() device: AuthenticatedDevice) {
    return this.keys.counts(device);
  }

  @Get('businesses/:phoneNumberId/bundle')
  bundle(@CurrentDevice() device: AuthenticatedDevice, @Param('phoneNumberId') id: string) {
    return this.businessBundles.fetch(device, parseInput(PhoneNumberId, id, 'phone_number_id'));
  }
}
