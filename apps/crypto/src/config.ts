import { z } from 'zod';
import { BaseConfigSchema } from '@relay/platform';

export const CryptoConfigSchema = BaseConfigSchema.extend({
  HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8082),
});
export type CryptoConfig = z.infer<typeof CryptoConfigSchema>;
