import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  CreateVerificationResponse,
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
import { NotRegisteredError } from './errors';
import { DeviceHttpClient, basicAuth, type Credentials } from './http-client';
import { identityPublic, newDeviceState, newKyberPreKeys, newPreKeys, newSignedPreKey } from './keygen';
import { StateStores } from './signal-stores';
import { DeviceCipher, type BusinessRead, type IncomingMessage } from './cipher';
import { FrameChannel } from './frame-channel';
import { AckQueue } from './ack-queue';
import type { DeviceState } from './state';
import type { DeviceStateStore } from './store';

export interface DeviceEvents {
  message: [IncomingMessage];
  /** The business read a message of this user (Cloud API mark-as-read; typing: it is typing a reply). */
  read: [BusinessRead];
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
  /** One-time keys per upload (default 100) and the server count below which to refill (default 10). */
  prekeyBatch?: number;
  prekeyMinimum?: number;
  /** The user's profile name, sent with each message (the business sees it as contacts[].profile.name). */
  profileName?: string;
}

const frameId = () => randomBytes(9).toString('base64url');

/**
 * A user's device: keys, registration, the WebSocket, encryption to businesses and decryption of
 * their messages. Crypto operations run one at a time and the state is saved after each, before the
 * result leaves the device (a send) or is acknowledged (a receive).
 */
export class DeviceClient extends EventEmitter<DeviceEvents> {
  readonly http: DeviceHttpClient;
  private readonly cipher: DeviceCipher;
  private channel?: FrameChannel;
  private serial: Promise<unknown> = Promise.resolve();
  private refillTimer?: NodeJS.Timeout;
  private readonly acks = new AckQueue((wamids, outcome) => this.ack(wamids, outcome));

  private constructor(
    private readonly state: DeviceState,
    private readonly opts: DeviceClientOptions,
  ) {
    super();
    this.http = new DeviceHttpClient(state.server, () => this.credentials());
    const stores = new StateStores(
      () => this.state,
      (name) => this.emit('identity_changed', { phone_number_id: name.replace(/^biz\./, '') }),
    );
    this.cipher = new DeviceCipher(
      () => this.state,
      stores,
      (pnid) => this.fetchBusinessBundle(pnid),
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
    const s = this.state;
    return s.wa_id && s.device_id ? { wa_id: s.wa_id, device_id: s.device_id } : undefined;
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

  private requireRegistered(): void {
    if (!this.credentials()) throw new NotRegisteredError();
  }

  private save(): Promise<void> {
    return this.opts.store.save(this.state);
  }

  /** Runs state-changing work one at a time (libsignal sessions must never be used concurrently). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.serial.then(fn, fn);
    this.serial = run.catch(() => undefined);
    return run;
  }

  // ---- registration and keys

  /** Starts phone verification; the code arrives by SMS (or, in demo mode, in the answer). */
  startVerification(waId: string): Promise<CreateVerificationResponse> {
    return this.http.call('POST', '/v1/verification/sessions', CreateVerificationResponse, { wa_id: waId });
  }

  /** Verifies the code, registers this device and uploads its first one-time prekeys. */
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
      Object.assign(this.state, { wa_id: res.wa_id, device_id: res.device_id, password: res.password });
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
    if (this.channel) return Promise.resolve();
    const url = new URL('/v1/websocket', this.state.server);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const channel = new FrameChannel(url.toString(), () => basicAuth(this.credentials() as Credentials));
    this.channel = channel;
    channel.on('open', () => {
      this.emit('connected');
      this.scheduleRefill(0);
    });
    channel.on('close', (code, reason) => this.emit('disconnected', { code, reason }));
    channel.on('terminal', (code, reason) => {
      clearTimeout(this.refillTimer);
      if (this.channel === channel) this.channel = undefined;
      this.emit('closed', { code, reason });
    });
    channel.on('frame', (f) => {
      if (f.type === 'message') void this.exclusive(() => this.receive(f));
      else if (f.type === 'queue_empty') this.emit('queue_empty');
      else this.emit('failure', f);
    });
    return channel.start();
  }

  async close(): Promise<void> {
    clearTimeout(this.refillTimer);
    this.acks.flush();
    const c = this.channel;
    this.channel = undefined;
    await c?.stop();
    await this.serial;
  }

  /** Sends a frame and waits for its result; unanswered frames are resent after a reconnect. */
  request(frame: ClientFrame): Promise<{ duplicate: boolean }> {
    if (!this.channel) return Promise.reject(new Error('not connected: call connect() first'));
    return this.channel.request(frame);
  }

  // ---- messaging

  /** Encrypts a text for a business and sends it; resolves once the relay stored it durably. */
  sendText(phoneNumberId: string, body: string): Promise<{ envelope_id: string; duplicate: boolean }> {
    return this.sendContent(phoneNumberId, { type: 'text', text: { body } });
  }

  async sendContent(phoneNumberId: string, content: MessageContent) {
    const frame = await this.encrypt(phoneNumberId, content);
    const name = this.opts.profileName;
    const r = await this.request(name === undefined ? frame : { ...frame, profile_name: name });
    return { envelope_id: frame.id, duplicate: r.duplicate };
  }

  /** Encrypts and saves the session; the frame can be sent (and resent) with request(). */
  encrypt(phoneNumberId: string, content: MessageContent): Promise<SendFrame> {
    return this.exclusive(async () => {
      const frame = await this.cipher.encrypt(phoneNumberId, content);
      await this.save();
      return frame;
    });
  }

  markRead(phoneNumberId: string, wamids: string[]): Promise<{ duplicate: boolean }> {
    this.acks.flush(); // queued acks first: 'delivered' before 'read'
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

  private async receive(f: MessageFrame): Promise<void> {
    const r = await this.cipher.decrypt(f);
    await this.save();
    // Saved, so the relay may forget it: the ack is queued before the app sees the message, so a read
    // receipt sent from the app's handler follows the delivered status.
    if (this.opts.autoAck !== false)
      this.acks.add(f.wamid, r.kind === 'failed' ? 'undecryptable' : 'delivered');
    if (r.kind === 'message') this.emit('message', r.message);
    if (r.kind === 'read') this.emit('read', r.read);
    if (r.kind === 'failed') {
      this.emit('decryption_failed', { wamid: f.wamid, phone_number_id: f.from, error: r.error });
    }
    if (f.ciphertext_type === 'prekey') this.scheduleRefill(1000);
  }

  private scheduleRefill(delayMs: number): void {
    clearTimeout(this.refillTimer);
    this.refillTimer = setTimeout(() => void this.refillPrekeys().catch(() => undefined), delayMs);
    this.refillTimer.unref();
  }
}
