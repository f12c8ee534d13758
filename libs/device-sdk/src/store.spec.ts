import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyStoreError } from './errors';
import { newDeviceState, newKyberPreKeys } from './keygen';
import { FileStateStore } from './store';

let dir: string;
beforeAll(async () => (dir = await mkdtemp(join(tmpdir(), 'device-store-'))));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('FileStateStore', () => {
  it('round-trips the state and writes no key material or credential in the clear', async () => {
    const path = join(dir, 'a.json');
    const state = newDeviceState('http://localhost:8080');
    state.password = 'super-secret-device-password';
    newKyberPreKeys(state, 1, true);
    await new FileStateStore(path, 'correct horse battery').save(state);
    const raw = await readFile(path, 'utf8');
    expect(raw).not.toContain(state.identity_private);
    expect(raw).not.toContain(state.password);
    expect(raw).not.toContain(Object.values(state.kyber_prekeys)[0].slice(0, 40));
    expect(JSON.parse(raw)).toMatchObject({
      format: 'relay-device-state',
      cipher: 'aes-256-gcm',
      kdf: { name: 'scrypt' },
    });
    expect(await new FileStateStore(path, 'correct horse battery').load()).toEqual(state);
  });

  it('refuses a wrong passphrase, a tampered file and a short passphrase', async () => {
    const path = join(dir, 'b.json');
    await new FileStateStore(path, 'correct horse battery').save(newDeviceState('http://x'));
    await expect(new FileStateStore(path, 'wrong passphrase!').load()).rejects.toBeInstanceOf(KeyStoreError);
    const file = JSON.parse(await readFile(path, 'utf8')) as { data: string };
    const tampered = Buffer.from(file.data, 'base64');
    tampered[0] ^= 1;
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path, JSON.stringify({ ...file, data: tampered.toString('base64') }));
    await expect(new FileStateStore(path, 'correct horse battery').load()).rejects.toThrow(
      /wrong passphrase or corrupted/,
    );
    expect(() => new FileStateStore(path, 'short')).toThrow(KeyStoreError);
    expect(await new FileStateStore(join(dir, 'missing.json'), 'correct horse battery').load()).toBeNull();
  });
});
