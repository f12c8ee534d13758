import { z } from 'zod';
import { BaseConfigSchema } from '@relay/platform';

export const StorageConfigSchema = BaseConfigSchema.extend({
  HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8083),
});
export type StorageConfig = z.infer<typeof StorageConfigSchema>;
