import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { KeyCounts, UploadKeysRequest } from '@relay/protocol';
import { GatewayError } from '../http/gateway-error';
import type { AuthenticatedDevice } from '../auth/device-auth.service';
import { DeviceRow } from '../accounts/device.entity';
import { InvalidKeyError, KeyVerifier } from '../signal/key-verifier';
import { DeviceKyberPrekeyRow, DevicePrekeyRow } from './prekey.entity';

const b = (s: string) => Buffer.from(s, 'base64');

/**
 * A device's prekey directory. Uploads follow Signal's SetKeysRequest: every signature is checked
 * before anything is written (one bad key: 422, nothing stored); a non-empty list replaces all stored
 * keys of its kind; a signed prekey or last-resort key replaces the stored one.
 */
@Injectable()
export class KeysService {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(KeyVerifier) private readonly verifier: KeyVerifier,
  ) {}

  async upload(device: AuthenticatedDevice, req: UploadKeysRequest): Promise<KeyCounts> {
    assertUniqueIds(req.prekeys ?? [], 'prekeys');
    assertUniqueIds(req.kyber_prekeys ?? [], 'kyber_prekeys');
    const where = { waId: device.waId, deviceId: device.deviceId };
    const row = await this.ds.getRepository(DeviceRow).findOne({ where, select: { identityKey: true } });
    if (!row) throw new GatewayError('unauthorized', 'device no longer exists');
    try {
      this.verifier.verifyUpload(row.identityKey, {
        signedEc: req.signed_prekey ? [req.signed_prekey] : [],
        signedKyber: [
          ...(req.kyber_prekeys ?? []),
          ...(req.kyber_last_resort_prekey ? [req.kyber_last_resort_prekey] : []),
        ],
        oneTimeEc: req.prekeys ?? [],
      });
    } catch (err) {
      if (err instanceof InvalidKeyError) throw new GatewayError('invalid_signature', err.message);
      throw err;
    }
    await this.store(where, req).catch((err: unknown) => {
      // The device was removed between authentication and this write.
      if ((err as { driverError?: { code?: string } }).driverError?.code === '23503') {
        throw new GatewayError('unauthorized', 'device no longer exists');
      }
      throw err;
    });
    return this.counts(device);
  }

  private async store(where: { waId: string; deviceId: number }, req: UploadKeysRequest): Promise<void> {
    await this.ds.transaction(async (em) => {
      // Device row first, as a device removal does (then its keys): the same lock order means an
      // upload and a removal of the same device wait for each other instead of deadlocking. It also
      // makes two uploads of one device take turns.
      const locked: unknown[] = await em.query(
        `SELECT 1 FROM "gateway"."devices" WHERE wa_id = $1 AND device_id = $2 FOR UPDATE`,
        [where.waId, where.deviceId],
      );
      if (locked.length === 0) throw new GatewayError('unauthorized', 'device no longer exists');
      const patch: Partial<DeviceRow> = {};
      if (req.signed_prekey) {
        patch.signedPrekeyId = req.signed_prekey.id;
        patch.signedPrekey = b(req.signed_prekey.public_key);
        patch.signedPrekeySignature = b(req.signed_prekey.signature);
      }
      if (req.kyber_last_resort_prekey) {
        patch.kyberLastResortId = req.kyber_last_resort_prekey.id;
        patch.kyberLastResortKey = b(req.kyber_last_resort_prekey.public_key);
        patch.kyberLastResortSignature = b(req.kyber_last_resort_prekey.signature);
      }
      if (Object.keys(patch).length > 0) await em.getRepository(DeviceRow).update(where, patch);
      if (req.prekeys?.length) {
        await em.getRepository(DevicePrekeyRow).delete(where);
        await em
          .getRepository(DevicePrekeyRow)
          .insert(req.prekeys.map((k) => ({ ...where, keyId: k.id, publicKey: b(k.public_key) })));
      }
      if (req.kyber_prekeys?.length) {
        await em.getRepository(DeviceKyberPrekeyRow).delete(where);
        await em.getRepository(DeviceKyberPrekeyRow).insert(
          req.kyber_prekeys.map((k) => ({
            ...where,
            keyId: k.id,
            publicKey: b(k.public_key),
            signature: b(k.signature),
          })),
        );
      }
    });
  }

  async counts(device: AuthenticatedDevice): Promise<KeyCounts> {
    const rows: { prekeys: string; kyber: string }[] = await this.ds.query(
      `SELECT (SELECT count(*) FROM "gateway"."device_prekeys" WHERE wa_id = $1 AND device_id = $2) AS prekeys,
              (SELECT count(*) FROM "gateway"."device_kyber_prekeys" WHERE wa_id = $1 AND device_id = $2) AS kyber`,
      [device.waId, device.deviceId],
    );
    return { prekeys: Number(rows[0].prekeys), kyber_prekeys: Number(rows[0].kyber) };
  }
}

function assertUniqueIds(keys: { id: number }[], what: string): void {
  if (new Set(keys.map((k) => k.id)).size !== keys.length) {
    throw new GatewayError('invalid_request', `${what}: key ids must be unique`);
  }
}
