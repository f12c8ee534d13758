import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  CiphertextMessageType,
  PreKeyBundle as SignalPreKeyBundle,
  PreKeySignalMessage,
  ProtocolAddress,
  PublicKey,
  KEMPublicKey,
  SignalMessage,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
} from '@signalapp/libsignal-client';
import {
  CreateVerificationResponse,
  DevicePlaintext,
  KeyCounts,
  PreKeyBundle,
  RegisterDeviceResponse,
  type AbuseKind,
  type ClientFrame,
  type MessageContent,
  type MessageFrame,
  type SendFrame,
  type ServerFrame,
  type UploadKeysRequest,
} from '@relay/protocol';
import type { z } from 'zod';
import { DeviceApiError, FrameError, NotRegisteredError } from './errors';
import { DeviceHttpClient, basicAuth, type Credentials } from './http-client';
import { identityPublic, newDeviceState, newKyberPreKeys, newPreKeys, newSignedPreKey } from './keygen';
import { StateStores } from './signal-stores';
import { ReconnectingSocket } from './socket';
import { bytes, fromB64, toB64, type DeviceState } from './state';
import type { DeviceStateStore } from './store';

export interface IncomingMessage {
  wamid: string;
  phone_number_id: string;
  content: MessageContent;
  sent_at: number;
  created_at: string;
}

export interface DeviceEvents {
  message: [IncomingMessage];
  identity_changed: [{ phone_number_id: string }];
  /** The relay could not process an envelope this device sent (reported by crypto). */
  failure: [Extract<ServerFrame, { type: 'failure' }>];
  /** A message from a business could not be decrypted; it was acknowledged as undecryptable. */
  decryption_failed: [{ wamid: string; phone_number_id: string; error: string }];
  queue_empty: [];
  connected: [];
  disconnected: [{ code: number; reason: string }];
  /** The connection ended for good: 4409 (connected elsewhere), 4403 (removed), 4401 (bad credentials). */
  closed: [{ code: number; reason: string }];
}

export interface DeviceClientOptions {
  store: DeviceStateStore;
  /** Gateway base URL, e.g. http://localhost:8080 (needed only when the store is empty). */
  server?: string;
  /** Ack each message once it is decrypted and saved (default true). */
  autoAck?: boolean;
  prekeyBatch?: number;
  prekeyMinimum?: number;
}

interface Pending {
  frame: ClientFrame;
  resolve: (r: { duplicate: boolean }) => void;
  reject: (e: Error) => void;
}

const businessAddress = (pnid: string, deviceId = 1) => ProtocolAddress.new(`biz.${pnid}`, deviceId);

/**
 * A user's device: keys, registration, the WebSocket, encryption to businesses and decryption of
 * their messages. Crypto operations run one at a time and the state is saved after each, before the
 * result leaves the device (a send) or is acknowledged (a receive).
 */
export class DeviceClient extends EventEmitter<DeviceEvents> {
  readonly http: DeviceHttpClient;
  private readonly stores: StateStores;
  private socket?: ReconnectingSocket;
  private readonly pending = new Map<string, Pending>();
  private serial: Promise<unknown> = Promise.resolve();
  private refillTimer?: NodeJS.Timeout;

  private constructor(
    private state: DeviceState,
    private readonly opts: DeviceClientOptions,
  ) {
    super();
    this.http = new DeviceHttpClient(state.server, () => this.credentials());
    this.stores = new StateStores(
      () => this.state,
      (name) => this.emit('identity_changed', { phone_number_id: name.replace(/^biz\./, '') }),
    );
  }

  /** Loads the device from its store, or creates a new one (fresh identity) when the store is empty. */
  static async open(opts: DeviceClientOptions): Promise<DeviceClient> {
    let state = await opts.store.load();
    if (!state) {
      if (!opts.server) throw new Error('server URL is required for a new device');
      state = newDeviceState(opts.server);
      await opts.store.save(state);
    }
    return new DeviceClient(state, opts);
  }

  get address(): { wa_id: string; device_id: number } | undefined {
    return this.state.wa_id && this.state.device_id
      ? { wa_id: this.state.wa_id, device_id: this.state.device_id }
      : undefined;
  }

  get identityKey(): string {
    return identityPublic(this.state);
  }

  private credentials(): Credentials | undefined {
    const s = this.state;
    return s.wa_id && s.device_id && s.password
      ? { waId: s.wa_id, deviceId: s.device_id, password: s.password }
      : undefined;
  }

  private save(): Promise<void> {
    return this.opts.store.save(this.state);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.serial.then(fn, fn);
    this.serial = run.catch(() => undefined);
    return run;
  }

  // ---- registration and keys

  /** Starts phone verification; the code arrives by SMS (or the demo echo). */
  startVerification(waId: string): Promise<CreateVerificationResponse> {
    return this.http.call('POST', '/v1/verification/sessions', CreateVerificationResponse, { wa_id: waId });
  }

  /** Verifies the code, registers this device and uploads its first prekeys. */
  async register(sessionId: string, code: string, name?: string): Promise<RegisterDeviceResponse> {
    await this.http.call('POST', `/v1/verification/sessions/${sessionId}/code`, null, { code });
    return this.exclusive(async () => {
      const signed = newSignedPreKey(this.state);
      const [lastResort] = newKyberPreKeys(this.state, 1, true);
      await this.save();
      const res = await this.http.call('POST', '/v1/devices', RegisterDeviceResponse, {
        session_id: sessionId,
        registration_id: this.state.registration_id,
        identity_key: identityPublic(this.state),
        signed_prekey: signed,
        kyber_last_resort_prekey: lastResort,
        ...(name ? { name } : {}),
      });
      this.state.wa_id = res.wa_id;
      this.state.device_id = res.device_id;
      this.state.password = res.password;
      await this.save();
      await this.uploadOneTimeKeys();
      return res;
    });
  }

  keyCounts(): Promise<KeyCounts> {
    this.requireRegistered();
    return this.http.call('GET', '/v1/keys/count', KeyCounts);
  }

  /** Uploads a fresh batch of one-time keys when the server holds fewer than the minimum. */
  async refillPrekeys(force = false): Promise<KeyCounts> {
    const counts = await this.keyCounts();
    const min = this.opts.prekeyMinimum ?? 10;
    if (!force && counts.prekeys >= min && counts.kyber_prekeys >= min) return counts;
    return this.exclusive(() => this.uploadOneTimeKeys());
  }

  private async uploadOneTimeKeys(): Promise<KeyCounts> {
    const n = this.opts.prekeyBatch ?? 100;
    const body = { prekeys: newPreKeys(this.state, n), kyber_prekeys: newKyberPreKeys(this.state, n) };
    await this.save();
    return this.uploadKeys(body);
  }

  /** Low-level key upload (PUT /v1/keys). */
  uploadKeys(body: UploadKeysRequest): Promise<KeyCounts> {
    this.requireRegistered();
    return this.http.call('PUT', '/v1/keys', KeyCounts, body);
  }

  fetchBusinessBundle(phoneNumberId: string): Promise<z.infer<typeof PreKeyBundle>> {
    this.requireRegistered();
    return this.http.call('GET', `/v1/businesses/${phoneNumberId}/bundle`, PreKeyBundle);
  }

  // ---- connection

  /** Opens the WebSocket (reconnecting with backoff); resolves once connected the first time. */
  connect(): Promise<void> {
    this.requireRegistered();
    if (this.socket) return Promise.resolve();
    const url = new URL('/v1/websocket', this.state.server);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new ReconnectingSocket(url.toString(), () => basicAuth(this.credentials() as Credentials));
    this.socket = socket;
    socket.on('frame', (f) => this.onFrame(f));
    socket.on('open', () => {
      this.emit('connected');
      for (const p of this.pending.values()) socket.send(p.frame);
      this.scheduleRefill(0);
    });
    socket.on('close', (code, reason) => this.emit('disconnected', { code, reason }));
    socket.on('terminal', (code, reason) => {
      clearTimeout(this.refillTimer);
      for (const p of this.pending.values())
        p.reject(new FrameError('unavailable', `connection closed (${code})`));
      this.pending.clear();
      this.socket = undefined;
      this.emit('closed', { code, reason });
    });
    return new Promise((resolve) => {
      socket.once('open', () => resolve());
      socket.start();
    });
  }

  async close(): Promise<void> {
    clearTimeout(this.refillTimer);
    const s = this.socket;
    this.socket = undefined;
    await s?.stop();
    await this.serial;
  }

  /** Sends a frame and waits for its result; unanswered frames are resent after a reconnect. */
  request(frame: ClientFrame): Promise<{ duplicate: boolean }> {
    return new Promise((resolve, reject) => {
      this.pending.set(frame.id, { frame, resolve, reject });
      this.socket?.send(frame);
    });
  }

  // ---- messaging

  /** Encrypts a text for a business and sends it; resolves once the relay stored it durably. */
  async sendText(phoneNumberId: string, body: string): Promise<{ envelope_id: string; duplicate: boolean }> {
    return this.sendContent(phoneNumberId, { type: 'text', text: { body } });
  }

  async sendContent(
    phoneNumberId: string,
    content: MessageContent,
  ): Promise<{ envelope_id: string; duplicate: boolean }> {
    const frame = await this.exclusive(() => this.encrypt(phoneNumberId, content));
    const r = await this.request(frame);
    return { envelope_id: frame.id, duplicate: r.duplicate };
  }

  /** Encrypts (starting a session from the business's bundle if needed) and saves the session. */
  async encrypt(phoneNumberId: string, content: MessageContent): Promise<SendFrame> {
    const addr = businessAddress(phoneNumberId, this.state.business_devices[phoneNumberId]);
    if (!this.state.sessions[addr.toString()]) await this.startSession(phoneNumberId);
    const address = businessAddress(phoneNumberId, this.state.business_devices[phoneNumberId]);
    const plaintext: DevicePlaintext = { v: 1, sent_at: Date.now(), content };
    const msg = await signalEncrypt(
      bytes(Buffer.from(JSON.stringify(plaintext))),
      address,
      this.localAddress(),
      this.stores.session,
      this.stores.identity,
    );
    await this.save();
    return {
      type: 'send',
      id: randomBytes(12).toString('base64url'),
      to: phoneNumberId,
      ciphertext_type: msg.type() === CiphertextMessageType.PreKey ? 'prekey' : 'whisper',
      ciphertext: toB64(msg.serialize()),
    };
  }

  private async startSession(phoneNumberId: string): Promise<void> {
    const b = await this.fetchBusinessBundle(phoneNumberId);
    this.state.business_devices[phoneNumberId] = b.device_id;
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

  markRead(phoneNumberId: string, wamids: string[]): Promise<{ duplicate: boolean }> {
    return this.request({
      type: 'receipt',
      id: frameId(),
      status: 'read',
      phone_number_id: phoneNumberId,
      wamids,
    });
  }

  report(phoneNumberId: string, kind: z.infer<typeof AbuseKind>): Promise<{ duplicate: boolean }> {
    return this.request({ type: 'report', id: frameId(), phone_number_id: phoneNumberId, kind });
  }

  /** Acknowledges messages (when autoAck is off): they leave the device's queue on the relay. */
  ack(
    wamids: string[],
    outcome: 'delivered' | 'undecryptable' = 'delivered',
  ): Promise<{ duplicate: boolean }> {
    return this.request({
      type: 'ack',
      id: frameId(),
      wamids,
      ...(outcome === 'undecryptable' ? { outcome } : {}),
    });
  }

  private onFrame(f: ServerFrame): void {
    switch (f.type) {
      case 'result':
      case 'error': {
        const p = f.id ? this.pending.get(f.id) : undefined;
        if (!p || !f.id) return;
        this.pending.delete(f.id);
        if (f.type === 'result') p.resolve({ duplicate: f.duplicate === true });
        else p.reject(new FrameError(f.code, f.message, f.retry_after_ms));
        return;
      }
      case 'message':
        void this.exclusive(() => this.receive(f));
        return;
      case 'queue_empty':
        this.emit('queue_empty');
        return;
      case 'failure':
        this.emit('failure', f);
        return;
    }
  }

  private async receive(f: MessageFrame): Promise<void> {
    let message: IncomingMessage | undefined;
    let error: string | undefined;
    try {
      const plain = await this.decrypt(f);
      const parsed = DevicePlaintext.safeParse(JSON.parse(Buffer.from(plain).toString('utf8')));
      if (parsed.success) {
        message = {
          wamid: f.wamid,
          phone_number_id: f.from,
          content: parsed.data.content,
          sent_at: parsed.data.sent_at,
          created_at: f.created_at,
        };
      } else error = 'invalid plaintext';
    } catch (err) {
      // Already decrypted before (a redelivery after a lost ack): acknowledge, do not surface again.
      if ((err as Error).name === 'DuplicatedMessage') {
        if (this.opts.autoAck !== false) void this.ack([f.wamid]).catch(() => undefined);
        return;
      }
      error = (err as Error).message;
    }
    await this.save();
    if (message) this.emit('message', message);
    else
      this.emit('decryption_failed', { wamid: f.wamid, phone_number_id: f.from, error: error ?? 'unknown' });
    if (this.opts.autoAck !== false) {
      void this.ack([f.wamid], message ? 'delivered' : 'undecryptable').catch(() => undefined);
    }
    if (f.ciphertext_type === 'prekey') this.scheduleRefill(1000);
  }

  private async decrypt(f: MessageFrame): Promise<Uint8Array> {
    const address = businessAddress(f.from, this.state.business_devices[f.from]);
    const data = fromB64(f.ciphertext);
    if (f.ciphertext_type === 'prekey') {
      return signalDecryptPreKey(
        PreKeySignalMessage.deserialize(data),
        address,
        this.localAddress(),
        this.stores.session,
        this.stores.identity,
        this.stores.prekey,
        this.stores.signed,
        this.stores.kyber,
      );
    }
    return signalDecrypt(
      SignalMessage.deserialize(data),
      address,
      this.localAddress(),
      this.stores.session,
      this.stores.identity,
    );
  }

  private scheduleRefill(delayMs: number): void {
    clearTimeout(this.refillTimer);
    this.refillTimer = setTimeout(() => void this.refillPrekeys().catch(() => undefined), delayMs);
    this.refillTimer.unref();
  }

  private localAddress(): ProtocolAddress {
    const a = this.address;
    if (!a) throw new NotRegisteredError();
    return ProtocolAddress.new(a.wa_id, a.device_id);
  }

  private requireRegistered(): void {
    if (!this.credentials()) throw new NotRegisteredError();
  }
}

const frameId = () => randomBytes(9).toString('base64url');

export { DeviceApiError };
