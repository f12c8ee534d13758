import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildAsyncApi, EVENTS, RPCS, NOTIFICATIONS } from '@relay/protocol';

const ROOT = join(__dirname, '..', '..');

describe('machine-readable NATS spec', () => {
  it('docs/nats-asyncapi.json is exactly what the typed subject map generates (run `npm run spec:nats`)', () => {
    const committed = JSON.parse(readFileSync(join(ROOT, 'docs/nats-asyncapi.json'), 'utf8'));
    expect(committed).toEqual(JSON.parse(JSON.stringify(buildAsyncApi('relay'))));
  });

  it('documents every event, RPC and notification with a payload schema', () => {
    const spec = buildAsyncApi('relay') as {
      channels: Record<string, { address: string }>;
      components: { messages: Record<string, { payload: { type?: string; oneOf?: unknown[] } }> };
    };
    const addresses = Object.values(spec.channels).map((c) => c.address);
    for (const name of Object.keys(EVENTS))
      expect(addresses.some((a) => a.startsWith(`relay.v1.${name}`))).toBe(true);
    for (const name of Object.keys(RPCS)) expect(addresses).toContain(`relay.v1.rpc.${name}`);
    for (const name of Object.keys(NOTIFICATIONS))
      expect(addresses.some((a) => a.startsWith(`relay.v1.notify.${name}`))).toBe(true);
    for (const m of Object.values(spec.components.messages))
      expect(m.payload.type ?? m.payload.oneOf).toBeTruthy();
  });

  it('docs/nats-subjects.md names every subject of the map', () => {
    const doc = readFileSync(join(ROOT, 'docs/nats-subjects.md'), 'utf8');
    for (const name of [...Object.keys(EVENTS), ...Object.keys(RPCS), ...Object.keys(NOTIFICATIONS)]) {
      expect({ name, documented: doc.includes(`\`${name}\``) }).toEqual({ name, documented: true });
    }
  });
});
