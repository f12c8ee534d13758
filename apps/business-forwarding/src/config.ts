import { z } from 'zod';
import { BaseConfigSchema } from '@relay/platform';

export const BusinessForwardingConfigSchema = BaseConfigSchema.extend({
  HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8081),
});
export type BusinessForwardingConfig = z.infer<typeof BusinessForwardingConfigSchema>;
