// Secrets for a local run, generated once and kept (mode 0600) under the data directory, never in the repo.
// A variable already set in the environment wins.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const GENERATORS = {
  MASTER_KEY: () => `local1:${randomBytes(32).toString('base64')}`,
  OPERATOR_TOKEN: () => randomBytes(24).toString('base64url'),
  SECRETS_ENCRYPTION_KEY: () => randomBytes(32).toString('base64'),
};

export function localSecrets(dataDir, env) {
  const file = join(dataDir, 'local-secrets.json');
  const stored = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  let changed = false;
  for (const [name, make] of Object.entries(GENERATORS)) {
    if (!stored[name]) {
      stored[name] = make();
      changed = true;
    }
  }
  if (changed) writeFileSync(file, JSON.stringify(stored, null, 2) + '\n', { mode: 0o600 });
  return Object.fromEntries(Object.keys(GENERATORS).map((k) => [k, env[k] ?? stored[k]]));
}
