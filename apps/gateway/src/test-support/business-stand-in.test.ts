/**
 * Stand-in for the crypto service (built separately): one business number with a real libsignal
 * identity. It answers crypto.business_bundle with a real bundle (one-time keys consumed), decrypts
 * the envelopes devices send (read from JetStream) and encrypts replies to a device.
 */
import { randomBytes } from 'node:crypto';
import {
  CiphertextMessageType,
  KEMPublicKey,
  PreKeyBundle as SignalPreKeyBundle,
  PreKeySignalMessage,
  PublicKey,
  processPreKeyBundle,
  ProtocolAddress,
  SignalMessage,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
} from '@signalapp/libsignal-client';
import type { NatsBus } from '@relay/platform';
import { DevicePlaintext, RpcError, type EventPayload, type PreKeyBundle } from '@relay/protocol';
import {
  StateStores,
  bytes,
  fromB64,
  identityPublic,
  newDeviceState,
  newKyberPreKeys,
  newPreKeys,
  newSignedPreKey,
  toB64,
  type DeviceState,
} from '@relay/device-sdk';

export interface Received {
  envelope: EventPayload<'device.envelope'>;
  plaintext: DevicePlaintext;
}

export class BusinessStandIn {
  readonly state: DeviceState;
  readonly stores: StateStores;
  readonly received: Received[] = [];
  readonly self: ProtocolAddress;
  private readonly signed;
  private readonly lastResort;
  private readonly prekeys;
  private readonly kyber;

  constructor(
    private readonly bus: NatsBus,
    readonly phoneNumberId: string,
  ) {
    this.state = newDeviceState('http://unused');
    this.stores = new StateStores(
      () => this.state,
      () => undefined,
    );
    this.signed = newSignedPreKey(this.state);
    [this.lastResort] = newKyberPreKeys(this.state, 1, true);
    this.prekeys = newPreKeys(this.state, 20);
    this.kyber = newKyberPreKeys(this.state, 20);
    this.self = ProtocolAddress.new(`biz${phoneNumberId}`, 1);
  }

  async start(): Promise<this> {
    this.bus.respond('crypto.business_bundle', async (req) => {
      if (req.phone_number_id !== this.phoneNumberId) throw new RpcError('not_found', 'no such number');
      return this.bundle();
    });
    await this.bus.consume(
      'device.envelope',
      { durable: `biz-${this.phoneNumberId}`, filter: [this.phoneNumberId] },
      async (e) => {
        const plain = await this.decrypt(e);
        this.received.push({
          envelope: e,
          plaintext: DevicePlaintext.parse(JSON.parse(Buffer.from(plain).toString('utf8'))),
        });
      },
    );
    return this;
  }

  bundle(): PreKeyBundle {
    const ec = this.prekeys.shift();
    const k = this.kyber.shift();
    return {
      registration_id: this.state.registration_id,
      device_id: 1,
      identity_key: identityPublic(this.state),
      signed_prekey: this.signed,
      ...(ec ? { prekey: ec } : {}),
      kyber_prekey: k ? { ...k, last_resort: false } : { ...this.lastResort, last_resort: true },
    };
  }

  private decrypt(e: EventPayload<'device.envelope'>): Promise<Uint8Array> {
    const from = ProtocolAddress.new(e.from.wa_id, e.from.device_id);
    const data = fromB64(e.ciphertext);
    const s = this.stores;
    return e.type === 'prekey'
      ? signalDecryptPreKey(
          PreKeySignalMessage.deserialize(data),
          from,
          this.self,
          s.session,
          s.identity,
          s.prekey,
          s.signed,
          s.kyber,
        )
      : signalDecrypt(SignalMessage.deserialize(data), from, this.self, s.session, s.identity);
  }

  /**
   * Starts a session with a device as crypto does when the business writes first: the device's bundle
   * comes from the gateway (gateway.device_bundles, one-time keys consumed).
   */
  async startSessionWith(to: { wa_id: string; device_id: number }): Promise<void> {
    const res = await this.bus.request('gateway.device_bundles', {
      wa_id: to.wa_id,
      phone_number_id: this.phoneNumberId,
      device_ids: [to.device_id],
    });
    const b = res.devices[0];
    const bundle = SignalPreKeyBundle.new(
      b.registration_id,
      b.device_id,
      b.prekey ? b.prekey.id : null,
      b.prekey ? PublicKey.deserialize(fromB64(b.prekey.public_key)) : null,
      b.signed_prekey.id,
      PublicKey.deserialize(fromB64(b.signed_prekey.public_key)),
      fromB64(b.signed_prekey.signature),
      PublicKey.deserialize(fromB64(b.identity_key)),
      b.kyber_prekey.id,
      KEMPublicKey.deserialize(fromB64(b.kyber_prekey.public_key)),
      fromB64(b.kyber_prekey.signature),
    );
    const addr = ProtocolAddress.new(to.wa_id, to.device_id);
    await processPreKeyBundle(bundle, addr, this.self, this.stores.session, this.stores.identity);
  }

  /** Encrypts a text for a device that has a session with this business. */
  encryptFor(to: { wa_id: string; device_id: number }, body: string) {
    return this.encryptContentFor(to, { type: 'text', text: { body } });
  }

  /** Encrypts any business content (a message, or a read receipt) as crypto does. */
  async encryptContentFor(to: { wa_id: string; device_id: number }, content: DevicePlaintext['content']) {
    const wamid = `wamid.${randomBytes(12).toString('base64url')}`;
    const plaintext: DevicePlaintext = { v: 1, wamid, sent_at: Date.now(), content };
    const msg = await signalEncrypt(
      bytes(Buffer.from(JSON.stringify(plaintext))),
      ProtocolAddress.new(to.wa_id, to.device_id),
      this.self,
      this.stores.session,
      this.stores.identity,
    );
    return {
      wamid,
      phone_number_id: this.phoneNumberId,
      type: msg.type() === CiphertextMessageType.PreKey ? ('prekey' as const) : ('whisper' as const),
      ciphertext: toB64(msg.serialize()),
    };
  }
}
