import { z } from 'zod';
import { BaseConfigSchema } from '@relay/platform';

export const GatewayConfigSchema = BaseConfigSchema.extend({
  HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
});
export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;
