import { FakeClock, type NatsBus } from '@relay/platform';
import { RpcError, type PreKeyBundle } from '@relay/protocol';
import { RecipientDevices } from './recipient-devices';

// The bus is a stand-in here (the RPC itself is covered against real NATS in crypto.int.test.ts): these
// cases pin down when the device list is asked for and what is made of each answer.
const key = Buffer.alloc(33, 5).toString('base64');
const bundle = (deviceId: number): PreKeyBundle => ({
  registration_id: 7,
  device_id: deviceId,
  identity_key: key,
  signed_prekey: { id: 1, public_key: key, signature: key },
  kyber_prekey: { id: 2, public_key: key, signature: key, last_resort: false },
});

function setup(answer: (req: { known_device_ids?: number[] }) => unknown) {
  const asked: { known_device_ids?: number[] }[] = [];
  const bus = {
    request: async (_name: string, req: { known_device_ids?: number[] }) => {
      asked.push(req);
      return answer(req);
    },
  } as unknown as NatsBus;
  const clock = new FakeClock();
  return { asked, clock, devices: new RecipientDevices(bus, clock, 1000, 60_000) };
}

const ids = (targets: { deviceId: number; bundle?: unknown }[]) =>
  targets.map((t) => [t.deviceId, t.bundle !== undefined]);

describe('RecipientDevices', () => {
  it('asks gateway at most once per TTL for a recipient with sessions, and follows added and removed devices', async () => {
    let current = [1];
    const { asked, clock, devices } = setup((req) => ({
      wa_id: '491',
      devices: current.filter((d) => !req.known_device_ids?.includes(d)).map(bundle),
      device_ids: current,
    }));
    expect(ids(await devices.targets('pn', '491', [1]))).toEqual([[1, false]]);
    expect(asked).toEqual([{ wa_id: '491', phone_number_id: 'pn', known_device_ids: [1] }]);
    current = [1, 2];
    clock.advance(59_000);
    expect(ids(await devices.targets('pn', '491', [1]))).toEqual([[1, false]]);
    expect(asked).toHaveLength(1);
    clock.advance(1_000);
    expect(ids(await devices.targets('pn', '491', [1]))).toEqual([
      [1, false],
      [2, true],
    ]);
    current = [2];
    clock.advance(60_000);
    expect(ids(await devices.targets('pn', '491', [1, 2]))).toEqual([[2, false]]);
    expect(asked).toHaveLength(3);
  });

  it('always asks for a recipient without sessions; no devices is an empty list', async () => {
    const { asked, devices } = setup(() => {
      throw new RpcError('not_found', 'no such user or devices');
    });
    expect(await devices.targets('pn', '492', [])).toEqual([]);
    expect(await devices.targets('pn', '492', [])).toEqual([]);
    expect(asked).toEqual([
      { wa_id: '492', phone_number_id: 'pn' },
      { wa_id: '492', phone_number_id: 'pn' },
    ]);
  });

  it('keeps the devices with a session when gateway does not answer, and fails only without any', async () => {
    const { devices } = setup(() => {
      throw new Error('request timed out');
    });
    expect(ids(await devices.targets('pn', '493', [3]))).toEqual([[3, false]]);
    await expect(devices.targets('pn', '494', [])).rejects.toThrow('timed out');
  });

  it('takes the sessions as they are from a gateway that lists no devices (older version)', async () => {
    const { devices } = setup(() => ({ wa_id: '495', devices: [bundle(1), bundle(4)] }));
    expect(ids(await devices.targets('pn', '495', [1]))).toEqual([
      [1, false],
      [4, true],
    ]);
  });
});
