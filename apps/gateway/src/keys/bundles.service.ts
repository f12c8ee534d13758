import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { RpcError, type PreKeyBundle, type RpcRequest, type RpcResponse } from '@relay/protocol';
import { DeviceRow } from '../accounts/device.entity';
import { returnedRows } from '../http/sql';

const b64 = (b: Buffer) => b.toString('base64');

/**
 * Bundles of a user's devices for crypto. A one-time key is handed out at most once: the row is
 * deleted by the caller that locks it (SKIP LOCKED lets a concurrent caller take the next one), and
 * the Kyber key falls back to the device's last-resort key when the one-time pool is empty.
 */
@Injectable()
export class BundlesService {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async take(req: RpcRequest<'gateway.device_bundles'>): Promise<RpcResponse<'gateway.device_bundles'>> {
    return this.ds.transaction(async (em) => {
      let devices = await em
        .getRepository(DeviceRow)
        .find({ where: { waId: req.wa_id }, order: { deviceId: 'ASC' } });
      if (req.device_ids) devices = devices.filter((d) => req.device_ids?.includes(d.deviceId));
      if (devices.length === 0) throw new RpcError('not_found', 'no such user or devices');
      const known = new Set(req.known_device_ids ?? []);
      const bundles: PreKeyBundle[] = [];
      for (const d of devices) if (!known.has(d.deviceId)) bundles.push(await this.bundleOf(em, d));
      if (!req.known_device_ids) return { wa_id: req.wa_id, devices: bundles };
      return { wa_id: req.wa_id, devices: bundles, device_ids: devices.map((d) => d.deviceId) };
    });
  }

  private async bundleOf(em: EntityManager, d: DeviceRow): Promise<PreKeyBundle> {
    const ec = returnedRows<{ key_id: number; public_key: Buffer }>(
      await em.query(
        `DELETE FROM "gateway"."device_prekeys" WHERE (wa_id, device_id, key_id) IN (
         SELECT wa_id, device_id, key_id FROM "gateway"."device_prekeys"
          WHERE wa_id = $1 AND device_id = $2 ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING key_id, public_key`,
        [d.waId, d.deviceId],
      ),
    );
    const kyber = returnedRows<{ key_id: number; public_key: Buffer; signature: Buffer }>(
      await em.query(
        `DELETE FROM "gateway"."device_kyber_prekeys" WHERE (wa_id, device_id, key_id) IN (
         SELECT wa_id, device_id, key_id FROM "gateway"."device_kyber_prekeys"
          WHERE wa_id = $1 AND device_id = $2 ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING key_id, public_key, signature`,
        [d.waId, d.deviceId],
      ),
    );
    const k = kyber[0];
    return {
      registration_id: d.registrationId,
      device_id: d.deviceId,
      identity_key: b64(d.identityKey),
      signed_prekey: {
        id: d.signedPrekeyId,
        public_key: b64(d.signedPrekey),
        signature: b64(d.signedPrekeySignature),
      },
      ...(ec[0] ? { prekey: { id: ec[0].key_id, public_key: b64(ec[0].public_key) } } : {}),
      kyber_prekey: k
        ? { id: k.key_id, public_key: b64(k.public_key), signature: b64(k.signature), last_resort: false }
        : {
            id: d.kyberLastResortId,
            public_key: b64(d.kyberLastResortKey),
            signature: b64(d.kyberLastResortSignature),
            last_resort: true,
          },
    };
  }
}
