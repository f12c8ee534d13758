import type { DataSource } from 'typeorm';
import { RpcError, type BusinessBundleRequest, type PreKeyBundle } from '@relay/protocol';
import { inTransaction } from '../common/sql';
import type { PreKeyRepository } from '../store/prekey.repository';
import type { ProvisioningService } from '../provisioning/provisioning.service';

const b64 = (b: Buffer) => b.toString('base64');

/** Answers crypto.business_bundle: a complete bundle, one-time keys consumed once across all nodes. */
export class BundleService {
  constructor(
    private readonly ds: DataSource,
    private readonly prekeys: PreKeyRepository,
    private readonly provisioning: ProvisioningService,
    private readonly threshold: number,
  ) {}

  async bundle(req: BusinessBundleRequest): Promise<PreKeyBundle> {
    const pn = req.phone_number_id;
    const b = await inTransaction(this.ds, (r) => this.prekeys.claimBundle(r, pn));
    if (!b) throw new RpcError('not_found', `phone number ${pn} has no Signal identity`);
    // The counts were read in the claim's snapshot, which still includes the key just taken.
    if (b.ec_left - 1 < this.threshold || b.ky_left - 1 < this.threshold) this.provisioning.refillSoon(pn);
    let kyber: PreKeyBundle['kyber_prekey'];
    if (b.ky_id !== null && b.ky_pub && b.ky_sig) {
      kyber = { id: b.ky_id, public_key: b64(b.ky_pub), signature: b64(b.ky_sig), last_resort: false };
    } else if (b.lr_id !== null && b.lr_pub && b.lr_sig) {
      kyber = { id: b.lr_id, public_key: b64(b.lr_pub), signature: b64(b.lr_sig), last_resort: true };
    } else {
      throw new RpcError('unavailable', `phone number ${pn} has no Kyber prekey`);
    }
    return {
      registration_id: b.registration_id,
      device_id: 1,
      identity_key: b64(b.identity_public),
      signed_prekey: { id: b.sp_id, public_key: b64(b.sp_pub), signature: b64(b.sp_sig) },
      ...(b.ec_id !== null && b.ec_pub ? { prekey: { id: b.ec_id, public_key: b64(b.ec_pub) } } : {}),
      kyber_prekey: kyber,
    };
  }
}
