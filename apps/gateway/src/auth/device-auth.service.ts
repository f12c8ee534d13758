import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DeviceRow } from '../accounts/device.entity';
import { GatewayError } from '../http/gateway-error';
import { parseBasicAuth, secretMatches } from './credentials';

export interface AuthenticatedDevice {
  waId: string;
  deviceId: number;
}

/** Checks a device's Basic credentials against the stored hash. One message for every failure. */
@Injectable()
export class DeviceAuthService {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async authenticate(header: string | undefined): Promise<AuthenticatedDevice> {
    const creds = parseBasicAuth(header);
    if (!creds) throw new GatewayError('unauthorized', 'missing or malformed Basic credentials');
    const row = await this.ds.getRepository(DeviceRow).findOne({
      where: { waId: creds.waId, deviceId: creds.deviceId },
      select: { waId: true, deviceId: true, secretHash: true },
    });
    if (!row || !secretMatches(creds.password, row.secretHash)) {
      throw new GatewayError('unauthorized', 'invalid credentials');
    }
    return { waId: row.waId, deviceId: row.deviceId };
  }

  /** Best-effort bookkeeping for the device list; never blocks a request. */
  touch(device: AuthenticatedDevice): void {
    void this.ds
      .getRepository(DeviceRow)
      .update({ waId: device.waId, deviceId: device.deviceId }, { lastSeenAt: new Date() })
      .catch(() => undefined);
  }
}
