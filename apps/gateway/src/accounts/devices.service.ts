import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { NatsBus } from '@relay/platform';
import type { RegisterDeviceRequest, RegisterDeviceResponse } from '@relay/protocol';
import { GatewayError } from '../http/gateway-error';
import { newDeviceSecret } from '../auth/credentials';
import type { AuthenticatedDevice } from '../auth/device-auth.service';
import { KeyVerifier, InvalidKeyError } from '../signal/key-verifier';
import { VerificationService } from './verification.service';
import { DeviceRow } from './device.entity';

const MAX_DEVICE_ID = 127;
const b = (s: string) => Buffer.from(s, 'base64');

/** Registers, lists and removes a user's devices. */
@Injectable()
export class DevicesService {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(VerificationService) private readonly verification: VerificationService,
    @Inject(KeyVerifier) private readonly keys: KeyVerifier,
    @Inject(NatsBus) private readonly bus: NatsBus,
  ) {}

  async register(req: RegisterDeviceRequest): Promise<RegisterDeviceResponse> {
    try {
      this.keys.verifyUpload(b(req.identity_key), {
        signedEc: [req.signed_prekey],
        signedKyber: [req.kyber_last_resort_prekey],
        oneTimeEc: [],
      });
    } catch (err) {
      if (err instanceof InvalidKeyError) throw new GatewayError('invalid_signature', err.message);
      throw err;
    }
    const secret = newDeviceSecret();
    const deviceId = await this.ds.transaction(async (em) => {
      const waId = await this.verification.consume(em, req.session_id);
      // One registration per number at a time, so two never pick the same free device id.
      await em.query(`SELECT pg_advisory_xact_lock(hashtext('gateway.devices:' || $1))`, [waId]);
      const used: { device_id: number }[] = await em.query(
        `SELECT device_id FROM "gateway"."devices" WHERE wa_id = $1`,
        [waId],
      );
      const taken = new Set(used.map((r) => r.device_id));
      let id = 1;
      while (taken.has(id)) id++;
      if (id > MAX_DEVICE_ID) throw new GatewayError('conflict', 'this number already has 127 devices');
      await em.getRepository(DeviceRow).insert({
        waId,
        deviceId: id,
        name: req.name ?? null,
        registrationId: req.registration_id,
        secretHash: secret.hash,
        identityKey: b(req.identity_key),
        signedPrekeyId: req.signed_prekey.id,
        signedPrekey: b(req.signed_prekey.public_key),
        signedPrekeySignature: b(req.signed_prekey.signature),
        kyberLastResortId: req.kyber_last_resort_prekey.id,
        kyberLastResortKey: b(req.kyber_last_resort_prekey.public_key),
        kyberLastResortSignature: b(req.kyber_last_resort_prekey.signature),
      });
      return { waId, id };
    });
    return { wa_id: deviceId.waId, device_id: deviceId.id, password: secret.password };
  }

  async list(waId: string) {
    const rows = await this.ds.getRepository(DeviceRow).find({
      where: { waId },
      order: { deviceId: 'ASC' },
      select: { deviceId: true, name: true, createdAt: true, lastSeenAt: true },
    });
    return {
      devices: rows.map((r) => ({
        device_id: r.deviceId,
        name: r.name,
        created_at: r.createdAt.toISOString(),
        last_seen_at: r.lastSeenAt ? r.lastSeenAt.toISOString() : null,
      })),
    };
  }

  /** A device may remove itself; the primary device (1) may remove any device of its number. */
  async remove(requester: AuthenticatedDevice, deviceId: number): Promise<void> {
    if (deviceId !== requester.deviceId && requester.deviceId !== 1) {
      throw new GatewayError('forbidden', 'only the primary device (1) may remove other devices');
    }
    const r = await this.ds.getRepository(DeviceRow).delete({ waId: requester.waId, deviceId });
    if (!r.affected) throw new GatewayError('not_found', 'no such device');
    const to = { wa_id: requester.waId, device_id: deviceId };
    this.bus.notify('device.control', to, { to, action: 'removed', connection_id: '' });
  }
}
