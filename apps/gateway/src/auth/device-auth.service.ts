import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { GatewayError } from '../http/gateway-error';
import { returnedRows } from '../http/sql';
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
    // Plain SQL: this runs for every request and connection, and the query builder costs more than it.
    const rows: { secret_hash: Buffer }[] = await this.ds.query(
      `SELECT secret_hash FROM "gateway"."devices" WHERE wa_id = $1 AND device_id = $2`,
      [creds.waId, creds.deviceId],
    );
    const row = rows[0];
    if (!row || !secretMatches(creds.password, row.secret_hash)) {
      throw new GatewayError('unauthorized', 'invalid credentials');
    }
    return { waId: creds.waId, deviceId: creds.deviceId };
  }

  /**
   * A WebSocket connection of the device: draws its connection epoch (one statement, which also
   * records it as seen). Epochs order a device's connections across gateway replicas, whatever order
   * their announcements arrive in.
   */
  async connected(device: AuthenticatedDevice): Promise<number> {
    const rows = returnedRows<{ epoch: string }>(
      await this.ds.query(
        `UPDATE "gateway"."devices" SET connection_epoch = connection_epoch + 1, last_seen_at = now()
         WHERE wa_id = $1 AND device_id = $2 RETURNING connection_epoch AS epoch`,
        [device.waId, device.deviceId],
      ),
    );
    if (!rows[0]) throw new GatewayError('unauthorized', 'invalid credentials');
    return Number(rows[0].epoch);
  }
}
