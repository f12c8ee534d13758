import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, UseGuards } from '@nestjs/common';
import {
  CreateVerificationRequest,
  DeviceId,
  RegisterDeviceRequest,
  SubmitCodeRequest,
} from '@relay/protocol';
import { z } from 'zod';
import { parseInput } from '../http/parse';
import { IpRateLimitGuard } from '../http/ip-rate-limit.guard';
import { CurrentDevice, DeviceAuthGuard } from '../auth/device-auth.guard';
import type { AuthenticatedDevice } from '../auth/device-auth.service';
import { VerificationService } from './verification.service';
import { DevicesService } from './devices.service';

const SessionIdParam = z.uuid();
const DeviceIdParam = z
  .string()
  .regex(/^\d{1,3}$/)
  .transform(Number)
  .pipe(DeviceId);

@Controller('v1')
@UseGuards(IpRateLimitGuard)
export class AccountsController {
  constructor(
    @Inject(VerificationService) private readonly verification: VerificationService,
    @Inject(DevicesService) private readonly devices: DevicesService,
  ) {}

  @Post('verification/sessions')
  @HttpCode(201)
  startVerification(@Body() body: unknown) {
    return this.verification.start(parseInput(CreateVerificationRequest, body).wa_id);
  }

  @Post('verification/sessions/:id/code')
  @HttpCode(200)
  async submitCode(@Param('id') id: string, @Body() body: unknown) {
    await this.verification.submit(
      parseInput(SessionIdParam, id, 'id'),
      parseInput(SubmitCodeRequest, body).code,
    );
    return { verified: true };
  }

  @Post('devices')
  @HttpCode(201)
  register(@Body() body: unknown) {
    return this.devices.register(parseInput(RegisterDeviceRequest, body));
  }

  @Get('devices')
  @UseGuards(DeviceAuthGuard)
  list(@CurrentDevice() device: AuthenticatedDevice) {
    return this.devices.list(device.waId);
  }

  @Delete('devices/:deviceId')
  @HttpCode(204)
  @UseGuards(DeviceAuthGuard)
  async remove(@CurrentDevice() device: AuthenticatedDevice, @Param('deviceId') deviceId: string) {
    await this.devices.remove(device, parseInput(DeviceIdParam, deviceId, 'device_id'));
  }
}
