import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Patch,
  Post,
  Put,
  Query,
  UseGuards,
} from '@nestjs/common';
import {
  CreateBusiness,
  CreateNumber,
  IssueToken,
  PatchBusiness,
  PatchNumber,
  PatchToken,
  Replay,
  RequestErasure,
  RotateSecret,
  SetWebhook,
  parseAdmin,
} from './admin.schemas';
import { ErasureService } from './erasure.service';
import { OperatorGuard } from './operator.guard';
import { TenantAdminService } from './tenant-admin.service';
import { WebhookAdminService } from './webhook-admin.service';

/** The operator API (docs/openapi.yaml, tag "Operator"): thin routes over the admin services. */
@Controller('admin/v1')
@UseGuards(OperatorGuard)
export class AdminController {
  constructor(
    private readonly tenants: TenantAdminService,
    private readonly webhooks: WebhookAdminService,
    private readonly erasures: ErasureService,
  ) {}

  @Post('businesses')
  createBusiness(@Body() body: unknown) {
    return this.tenants.createBusiness(parseAdmin(CreateBusiness, body));
  }
  @Get('businesses')
  listBusinesses() {
    return this.tenants.listBusinesses();
  }
  @Get('businesses/:waba')
  business(@Param('waba') waba: string) {
    return this.tenants.business(waba);
  }
  @Patch('businesses/:waba')
  patchBusiness(@Param('waba') waba: string, @Body() body: unknown) {
    return this.tenants.patchBusiness(waba, parseAdmin(PatchBusiness, body));
  }
  @Put('businesses/:waba/app_secret')
  rotateSecret(@Param('waba') waba: string, @Body() body: unknown) {
    return this.tenants.rotateSecret(waba, parseAdmin(RotateSecret, body));
  }

  @Post('businesses/:waba/phone_numbers')
  addNumber(@Param('waba') waba: string, @Body() body: unknown) {
    return this.tenants.addNumber(waba, parseAdmin(CreateNumber, body));
  }
  @Get('businesses/:waba/phone_numbers')
  numbers(@Param('waba') waba: string) {
    return this.tenants.numbers(waba);
  }
  @Get('phone_numbers/:pnid')
  number(@Param('pnid') pnid: string) {
    return this.tenants.number(pnid);
  }
  @Patch('phone_numbers/:pnid')
  patchNumber(@Param('pnid') pnid: string, @Body() body: unknown) {
    return this.tenants.patchNumber(pnid, parseAdmin(PatchNumber, body));
  }

  @Post('businesses/:waba/tokens')
  issueToken(@Param('waba') waba: string, @Body() body: unknown) {
    return this.tenants.issueToken(waba, parseAdmin(IssueToken, body));
  }
  @Get('businesses/:waba/tokens')
  tokens(@Param('waba') waba: string) {
    return this.tenants.tokens(waba);
  }
  @Patch('businesses/:waba/tokens/:id')
  patchToken(@Param('waba') waba: string, @Param('id') id: string, @Body() body: unknown) {
    return this.tenants.patchToken(waba, uuidOr404(id), parseAdmin(PatchToken, body));
  }
  @Delete('businesses/:waba/tokens/:id')
  revokeToken(@Param('waba') waba: string, @Param('id') id: string) {
    return this.tenants.revokeToken(waba, uuidOr404(id));
  }

  @Put('businesses/:waba/webhook')
  setWebhook(@Param('waba') waba: string, @Body() body: unknown) {
    return this.webhooks.set(waba, parseAdmin(SetWebhook, body));
  }
  @Get('businesses/:waba/webhook')
  webhook(@Param('waba') waba: string) {
    return this.webhooks.get(waba);
  }
  @Delete('businesses/:waba/webhook')
  removeWebhook(@Param('waba') waba: string) {
    return this.webhooks.remove(waba);
  }
  @Get('businesses/:waba/webhook/attempts')
  attempts(@Param('waba') waba: string, @Query('limit') limit?: string, @Query('before') before?: string) {
    return this.webhooks.attempts(waba, Number(limit ?? 100), digitsOrUndefined(before));
  }
  @Get('businesses/:waba/webhook/dead_letters')
  deadLetters(@Param('waba') waba: string, @Query('limit') limit?: string, @Query('after') after?: string) {
    return this.webhooks.deadLetters(waba, Number(limit ?? 100), digitsOrUndefined(after));
  }
  @Post('businesses/:waba/webhook/dead_letters/replay')
  @HttpCode(200)
  replay(@Param('waba') waba: string, @Body() body: unknown) {
    return this.webhooks.replay(waba, parseAdmin(Replay, body));
  }

  @Post('businesses/:waba/erasures')
  @HttpCode(202)
  erase(@Param('waba') waba: string, @Body() body: unknown) {
    return this.erasures.request(waba, parseAdmin(RequestErasure, body));
  }
  @Get('erasures/:id')
  erasure(@Param('id') id: string) {
    return this.erasures.status(id);
  }
}

function uuidOr404(id: string): string {
  return /^[0-9a-f-]{36}$/i.test(id) ? id : '00000000-0000-0000-0000-000000000000';
}
function digitsOrUndefined(v?: string): string | undefined {
  return v && /^\d{1,18}$/.test(v) ? v : undefined;
}
