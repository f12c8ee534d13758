import type { Clock, NatsBus } from '@relay/platform';
import { RpcError, type PreKeyBundle } from '@relay/protocol';
import type { BundleInput } from '../signal/protocol';

/** A device to encrypt for; a bundle when crypto has no session with it yet. */
export interface Target {
  deviceId: number;
  bundle?: BundleInput;
}

const raw = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

export function toBundleInput(b: PreKeyBundle): BundleInput {
  return {
    registrationId: b.registration_id,
    deviceId: b.device_id,
    identityKey: raw(b.identity_key),
    signedPreKey: {
      id: b.signed_prekey.id,
      publicKey: raw(b.signed_prekey.public_key),
      signature: raw(b.signed_prekey.signature),
    },
    preKey: b.prekey ? { id: b.prekey.id, publicKey: raw(b.prekey.public_key) } : undefined,
    kyberPreKey: {
      id: b.kyber_prekey.id,
      publicKey: raw(b.kyber_prekey.public_key),
      signature: raw(b.kyber_prekey.signature),
    },
  };
}

/** Recipients whose device list this process remembers checking (oldest first). */
const CHECKED_MAX = 100_000;

/**
 * Which devices of a user a business message goes to. Sessions say which devices crypto already
 * talks to; gateway knows which devices exist now. A user who links a second device (or removes one)
 * after crypto has a session must still get the next messages on exactly the current devices, so the
 * list is checked with gateway at most once per DEVICE_LIST_TTL_MS per recipient and process (one RPC,
 * which spends one-time keys only on devices without a session). If gateway does not answer, the
 * devices with a session are used: a send never fails because of the check itself.
 */
export class RecipientDevices {
  private readonly checked = new Map<string, number>();

  constructor(
    private readonly bus: NatsBus,
    private readonly clock: Clock,
    private readonly rpcTimeoutMs: number,
    private readonly ttlMs: number,
  ) {}

  /** The targets for (pn, waId), given the devices crypto has sessions with (ascending). */
  async targets(pn: string, waId: string, known: number[]): Promise<Target[]> {
    const key = `${pn}|${waId}`;
    const now = this.clock.now().getTime();
    const at = this.checked.get(key);
    const withSession = () => known.map((deviceId) => ({ deviceId }));
    if (known.length > 0 && at !== undefined && now - at < this.ttlMs) return withSession();
    let res;
    try {
      res = await this.bus.request(
        'gateway.device_bundles',
        { wa_id: waId, phone_number_id: pn, ...(known.length ? { known_device_ids: known } : {}) },
        this.rpcTimeoutMs,
      );
    } catch (err) {
      if (err instanceof RpcError && err.code === 'not_found') {
        this.remember(key, now);
        return [];
      }
      if (known.length > 0) return withSession();
      throw err;
    }
    this.remember(key, now);
    // A gateway that predates device_ids lists no devices: the sessions stand.
    const current = new Set(res.device_ids ?? known);
    const fresh = res.devices
      .filter((b) => !known.includes(b.device_id))
      .map((b) => ({ deviceId: b.device_id, bundle: toBundleInput(b) }));
    return [...known.filter((d) => current.has(d)).map((deviceId) => ({ deviceId })), ...fresh].sort(
      (a, b) => a.deviceId - b.deviceId,
    );
  }

  private remember(key: string, now: number): void {
    this.checked.delete(key);
    this.checked.set(key, now);
    for (const [k, at] of this.checked) {
      if (this.checked.size <= CHECKED_MAX && now - at < this.ttlMs) break;
      this.checked.delete(k);
    }
  }
}
