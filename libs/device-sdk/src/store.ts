import {
  createCipheriv,
  createDecipheriv,
  randomBytes,
  scrypt as scryptCb,
  type ScryptOptions,
} from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { KeyStoreError } from './errors';
import type { DeviceState } from './state';

/** Where a device keeps its state. Implementations must save atomically (all or nothing). */
export interface DeviceStateStore {
  load(): Promise<DeviceState | null>;
  save(state: DeviceState): Promise<void>;
}

/** Keeps state in memory only (tests, ephemeral devices). */
export class MemoryStateStore implements DeviceStateStore {
  private json?: string;
  async load(): Promise<DeviceState | null> {
    return this.json ? (JSON.parse(this.json) as DeviceState) : null;
  }
  async save(state: DeviceState): Promise<void> {
    this.json = JSON.stringify(state);
  }
}

const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

interface SealedFile {
  format: 'relay-device-state';
  v: 1;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  cipher: 'aes-256-gcm';
  iv: string;
  tag: string;
  data: string;
}

function scrypt(pass: string, salt: Buffer, o: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(pass, salt, 32, o, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/**
 * The default store: one file, the whole state sealed with AES-256-GCM under a key derived from a
 * passphrase with scrypt. Nothing (keys, sessions, credentials) is written in the clear; writes go
 * to a temporary file that replaces the old one, so a crash leaves either the old or the new state.
 */
export class FileStateStore implements DeviceStateStore {
  private key?: { salt: Buffer; key: Buffer };

  constructor(
    readonly path: string,
    private readonly passphrase: string,
  ) {
    if (passphrase.length < 8) throw new KeyStoreError('passphrase must be at least 8 characters');
  }

  async load(): Promise<DeviceState | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new KeyStoreError(`cannot read ${this.path}: ${(err as Error).message}`);
    }
    let file: SealedFile;
    try {
      file = JSON.parse(text) as SealedFile;
      if (file.format !== 'relay-device-state' || file.v !== 1) throw new Error('unknown format');
    } catch {
      throw new KeyStoreError(`${this.path} is not a device state file`);
    }
    const salt = Buffer.from(file.kdf.salt, 'base64');
    const key = await scrypt(this.passphrase, salt, {
      ...SCRYPT,
      N: file.kdf.N,
      r: file.kdf.r,
      p: file.kdf.p,
    });
    try {
      const d = createDecipheriv('aes-256-gcm', key, Buffer.from(file.iv, 'base64'));
      d.setAuthTag(Buffer.from(file.tag, 'base64'));
      const plain = Buffer.concat([d.update(Buffer.from(file.data, 'base64')), d.final()]);
      this.key = { salt, key };
      return JSON.parse(plain.toString('utf8')) as DeviceState;
    } catch {
      throw new KeyStoreError('wrong passphrase or corrupted device state');
    }
  }

  async save(state: DeviceState): Promise<void> {
    if (!this.key) {
      const salt = randomBytes(16);
      this.key = { salt, key: await scrypt(this.passphrase, salt, SCRYPT) };
    }
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key.key, iv);
    const data = Buffer.concat([c.update(JSON.stringify(state), 'utf8'), c.final()]);
    const file: SealedFile = {
      format: 'relay-device-state',
      v: 1,
      kdf: { name: 'scrypt', N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, salt: this.key.salt.toString('base64') },
      cipher: 'aes-256-gcm',
      iv: iv.toString('base64'),
      tag: c.getAuthTag().toString('base64'),
      data: data.toString('base64'),
    };
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(file), { mode: 0o600 });
    await rename(tmp, this.path);
  }
}
