/**
 * Stand-in for the crypto service (built separately): one business number with a real libsignal
 * identity. It answers crypto.business_bundle with a real bundle (one-time keys consumed), decrypts
 * the envelopes devices send (read from JetStream) and encrypts replies to a device.
 */
import { randomBytes } from 'node:crypto';
import {
  CiphertextMessageType,
  PreKeySignalMessage,
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

  /** Encrypts a text for a device that has a session with this business (it wrote first). */
  async encryptFor(to: { wa_id: string; device_id: number }, body: string) {
    const wamid = `wamid.${randomBytes(12).toString('base64url')}`;
    const plaintext: DevicePlaintext = {
      v: 1,
      wamid,
      sent_at: Date.now(),
      content: { type: 'text', text: { body } },
    };
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
