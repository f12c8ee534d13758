import { Controller, Delete, Get, HttpCode, Post, Query, UseGuards } from '@nestjs/common';
import type { Tenant } from '../tenancy/auth.service';
import { CloudAuthGuard, CurrentTenant } from '../tenancy/cloud-auth.guard';
import { BlockUsersService } from './block-users.service';
import { GraphBody } from './graph-body';
import { parseSend } from './message-validation';
import { PhoneNumberService } from './phone-number.service';
import { SendService } from './send.service';

/** The Cloud API paths the relay serves, under any `v<major>.<minor>` prefix. */
@Controller(':version/:phoneNumberId')
@UseGuards(CloudAuthGuard)
export class CloudApiController {
  constructor(
    private readonly sender: SendService,
    private readonly numbers: PhoneNumberService,
    private readonly blocks: BlockUsersService,
  ) {}

  @Post('messages')
  @HttpCode(200)
  send(@CurrentTenant() t: Tenant, @GraphBody() body: unknown) {
    return this.sender.send(t, parseSend(body));
  }

  @Get()
  info(@CurrentTenant() t: Tenant) {
    return this.numbers.info(t);
  }

  @Post('register')
  @HttpCode(200)
  register(@CurrentTenant() t: Tenant, @GraphBody() body: unknown) {
    return this.numbers.register(t, body);
  }

  @Post('deregister')
  @HttpCode(200)
  deregister(@CurrentTenant() t: Tenant) {
    return this.numbers.deregister(t);
  }

  @Get('settings')
  settings(@CurrentTenant() t: Tenant) {
    return this.numbers.settings(t);
  }

  @Post('settings')
  @HttpCode(200)
  updateSettings(@CurrentTenant() t: Tenant, @GraphBody() body: unknown) {
    return this.numbers.updateSettings(t, body);
  }

  @Get('block_users')
  blocked(@CurrentTenant() t: Tenant, @Query() query: Record<string, unknown>) {
    return this.blocks.list(t, query);
  }

  @Post('block_users')
  @HttpCode(200)
  block(@CurrentTenant() t: Tenant, @GraphBody() body: unknown) {
    return this.blocks.block(t, body);
  }

  @Delete('block_users')
  @HttpCode(200)
  unblock(@CurrentTenant() t: Tenant, @GraphBody() body: unknown) {
    return this.blocks.unblock(t, body);
  }
}
