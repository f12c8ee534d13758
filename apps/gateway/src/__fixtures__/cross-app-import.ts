// Lint fixture (never built or linted with the tree): an app reaching into another app's code.
// test/foundation/boundaries.test.ts lints this file and expects the module-boundary error.
import { CryptoConfigSchema } from '../../../crypto/src/config';

export const leaked = CryptoConfigSchema;
