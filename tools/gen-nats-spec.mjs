// Writes docs/nats-asyncapi.json from the typed subject map (libs/protocol), the same zod schemas that
// validate payloads at runtime. A test fails when the committed file differs from what this generates.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { buildAsyncApi } = require(join(root, 'dist/libs/protocol/src/index.js'));
const out = join(root, 'docs/nats-asyncapi.json');
writeFileSync(out, JSON.stringify(buildAsyncApi('relay'), null, 2) + '\n');
console.log(`wrote ${out}`);
