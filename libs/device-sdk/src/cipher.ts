import { randomBytes } from 'node:crypto';
import {
  CiphertextMessageType,
  KEMPublicKey,
  PreKeyBundle as SignalPreKeyBundle,
  PreKeySignalMessage,
  ProtocolAddress,
  PublicKey,
  SignalMessage,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
} from '@signalapp/libsignal-client';
import {
  DevicePlaintext,
  type MessageContent,
  type MessageFrame,
  type PreKeyBundle,
  type SendFrame,
} from '@relay/protocol';
import { NotRegisteredError } from './errors';
import type { StateStores } from './signal-stores';
import { bytes, fromB64, toB64, type DeviceState } from './state';

export interface IncomingMessage {
  wamid: string;
  phone_number_id: string;
  content: MessageContent;
  sent_at: number;
  created_at: string;
}

/** The business read one of this user's messages (and may be typing a reply). */
export interface BusinessRead {
  phone_number_id: string;
  message_id: string;
  typing: boolean;
}

export type DecryptResult =
  | { kind: 'message'; message: IncomingMessage }
  | { kind: 'read'; read: BusinessRead }
  | { kind: 'duplicate' }
  | { kind: 'failed'; error: string };

/** The device's address for a business number; local to this device (never sent anywhere). */
const businessAddress = (pnid: string, deviceId = 1) => ProtocolAddress.new(`biz.${pnid}`, deviceId);

/**
 * Signal sessions with businesses: encrypts texts (starting a session from the business's bundle the
 * first time) and decrypts what businesses send. Mutates the device state through the stores; the
 * caller saves it after each call.
 */
export class DeviceCipher {
  constructor(
    private readonly state: () => DeviceState,
    private readonly stores: StateStores,
    private readonly fetchBundle: (phoneNumberId: string) => Promise<PreKeyBundle>,
  ) {}

  async encrypt(phoneNumberId: string, content: MessageContent): Promise<SendFrame> {
    const s = this.state();
    if (!s.sessions[businessAddress(phoneNumberId, s.business_devices[phoneNumberId]).toString()]) {
      await this.startSession(phoneNumberId);
    }
    const plaintext: DevicePlaintext = { v: 1, sent_at: Date.now(), content };
    const msg = await signalEncrypt(
      bytes(Buffer.from(JSON.stringify(plaintext))),
      businessAddress(phoneNumberId, s.business_devices[phoneNumberId]),
      this.localAddress(),
      this.stores.session,
      this.stores.identity,
    );
    return {
      type: 'send',
      id: randomBytes(12).toString('base64url'),
      to: phoneNumberId,
      ciphertext_type: msg.type() === CiphertextMessageType.PreKey ? 'prekey' : 'whisper',
      ciphertext: toB64(msg.serialize()),
    };
  }

  private async startSession(phoneNumberId: string): Promise<void> {
    const b = await this.fetchBundle(phoneNumberId);
    this.state().business_devices[phoneNumberId] = b.device_id;
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
    await processPreKeyBundle(
      bundle,
      businessAddress(phoneNumberId, b.device_id),
      this.localAddress(),
      this.stores.session,
      this.stores.identity,
    );
  }

  async decrypt(f: MessageFrame): Promise<DecryptResult> {
    let plain: Uint8Array;
    try {
      plain = await this.decryptBytes(f);
    } catch (err) {
      // Decrypted before (a redelivery after a lost ack): not an error, and not a new message.
      if ((err as Error).name === 'DuplicatedMessage') return { kind: 'duplicate' };
      return { kind: 'failed', error: (err as Error).message };
    }
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(plain).toString('utf8'));
    } catch {
      return { kind: 'failed', error: 'plaintext is not JSON' };
    }
    const parsed = DevicePlaintext.safeParse(json);
    if (!parsed.success) return { kind: 'failed', error: 'invalid plaintext' };
    const content = parsed.data.content;
    if (content.type === 'read_receipt') {
      const { message_id, typing_indicator } = content.read_receipt;
      return {
        kind: 'read',
        read: { phone_number_id: f.from, message_id, typing: typing_indicator === true },
      };
    }
    return {
      kind: 'message',
      message: {
        wamid: f.wamid,
        phone_number_id: f.from,
        content,
        sent_at: parsed.data.sent_at,
        created_at: f.created_at,
      },
    };
  }

  private decryptBytes(f: MessageFrame): Promise<Uint8Array> {
    const address = businessAddress(f.from, this.state().business_devices[f.from]);
    const data = fromB64(f.ciphertext);
    const s = this.stores;
    if (f.ciphertext_type === 'prekey') {
      return signalDecryptPreKey(
        PreKeySignalMessage.deserialize(data),
        address,
        this.localAddress(),
        s.session,
        s.identity,
        s.prekey,
        s.signed,
        s.kyber,
      );
    }
    return signalDecrypt(
      SignalMessage.deserialize(data),
      address,
      this.localAddress(),
      s.session,
      s.identity,
    );
  }

  private localAddress(): ProtocolAddress {
    const s = this.state();
    if (!s.wa_id || !s.device_id) throw new NotRegisteredError();
    return ProtocolAddress.new(s.wa_id, s.device_id);
  }
}
