import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { CLOCK, NatsBus, type Clock } from '@relay/platform';
import type { ReportFrame } from '@relay/protocol';
import type { AuthenticatedDevice } from '../auth/device-auth.service';
import { toGatewayError } from '../keys/business-bundle.service';
import { BusinessBlockRow } from './block.entity';

/** Spam reports and blocks of a business by a user become events for the number's quality rating. */
@Injectable()
export class AbuseService {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async report(device: AuthenticatedDevice, frame: ReportFrame): Promise<void> {
    const key = { waId: device.waId, phoneNumberId: frame.phone_number_id };
    const repo = this.ds.getRepository(BusinessBlockRow);
    if (frame.kind === 'block') await repo.upsert(key, ['waId', 'phoneNumberId']);
    if (frame.kind === 'unblock') await repo.delete(key);
    try {
      await this.bus.publish(
        'business.abuse_report',
        { phone_number_id: frame.phone_number_id },
        {
          report_id: randomUUID(),
          phone_number_id: frame.phone_number_id,
          wa_id: device.waId,
          kind: frame.kind,
          at: this.clock.now().toISOString(),
        },
        // A resent report frame (same id) counts once.
        { msgId: `report.${device.waId}.${device.deviceId}.${frame.id}` },
      );
    } catch (err) {
      throw toGatewayError(err);
    }
  }
}
