import { z } from 'zod';

/**
 * Minimal schemas for the custom resources with no published model package: CloudNativePG's Cluster and
 * ScheduledBackup (postgresql.cnpg.io/v1). They check apiVersion/kind, the fields the CRD requires and
 * the types and enums of every field these manifests use; unknown spec keys are rejected (typos), so a
 * field this project starts using must be added here after checking the CNPG API reference.
 */
const quantity = z.string().regex(/^\d+(\.\d+)?(Ki|Mi|Gi|Ti|m|k|M|G|T)?$/);
const secretKey = z.object({ name: z.string().min(1), key: z.string().min(1) }).strict();
const localRef = z.object({ name: z.string().min(1) }).strict();
const metadata = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
      .max(50),
  })
  .loose();
const resources = z
  .object({
    requests: z.record(z.string(), quantity).optional(),
    limits: z.record(z.string(), quantity).optional(),
  })
  .strict();
const storage = z.object({ size: quantity, storageClass: z.string().optional() }).strict();
const barman = z
  .object({
    destinationPath: z.string().regex(/^(s3|gs|https?):\/\//),
    endpointURL: z.string().optional(),
    s3Credentials: z.object({ accessKeyId: secretKey, secretAccessKey: secretKey }).strict().optional(),
    wal: z
      .object({ compression: z.enum(['gzip', 'bzip2', 'snappy']), encryption: z.enum(['AES256', 'aws:kms']) })
      .partial()
      .strict()
      .optional(),
    data: z
      .object({ compression: z.enum(['gzip', 'bzip2', 'snappy']), encryption: z.enum(['AES256', 'aws:kms']) })
      .partial()
      .strict()
      .optional(),
  })
  .strict();

export const CnpgCluster = z
  .object({
    apiVersion: z.literal('postgresql.cnpg.io/v1'),
    kind: z.literal('Cluster'),
    metadata,
    spec: z
      .object({
        instances: z.number().int().min(1),
        imageName: z.string().optional(),
        primaryUpdateStrategy: z.enum(['supervised', 'unsupervised']).optional(),
        enableSuperuserAccess: z.boolean().optional(),
        storage,
        walStorage: storage.optional(),
        resources: resources.optional(),
        postgresql: z
          .object({ parameters: z.record(z.string(), z.string()) })
          .partial()
          .strict()
          .optional(),
        bootstrap: z
          .object({
            initdb: z
              .object({
                database: z.string(),
                owner: z.string(),
                postInitApplicationSQL: z.array(z.string()).optional(),
              })
              .strict(),
          })
          .strict()
          .optional(),
        managed: z
          .object({
            roles: z.array(
              z
                .object({
                  name: z.string().regex(/^[a-z_][a-z0-9_]*$/),
                  ensure: z.enum(['present', 'absent']).optional(),
                  login: z.boolean().optional(),
                  connectionLimit: z.number().int().optional(),
                  passwordSecret: localRef.optional(),
                })
                .strict(),
            ),
          })
          .strict()
          .optional(),
        inheritedMetadata: z
          .object({ labels: z.record(z.string(), z.string()) })
          .partial()
          .strict()
          .optional(),
        monitoring: z.object({ enablePodMonitor: z.boolean() }).partial().strict().optional(),
        affinity: z
          .object({
            enablePodAntiAffinity: z.boolean(),
            topologyKey: z.string(),
            nodeSelector: z.record(z.string(), z.string()),
          })
          .partial()
          .strict()
          .optional(),
        backup: z
          .object({ retentionPolicy: z.string().regex(/^[1-9][0-9]*[dwm]$/), barmanObjectStore: barman })
          .strict()
          .optional(),
      })
      .strict(),
  })
  .loose();

export const CnpgScheduledBackup = z
  .object({
    apiVersion: z.literal('postgresql.cnpg.io/v1'),
    kind: z.literal('ScheduledBackup'),
    metadata,
    spec: z
      .object({
        // Six fields: CNPG's cron has seconds.
        schedule: z.string().regex(/^(\S+\s+){5}\S+$/),
        cluster: localRef,
        backupOwnerReference: z.enum(['none', 'self', 'cluster']).optional(),
        method: z.enum(['barmanObjectStore', 'volumeSnapshot', 'plugin']).optional(),
      })
      .strict(),
  })
  .loose();

export const CRD_SCHEMAS: Record<string, z.ZodType> = {
  'postgresql.cnpg.io/v1/Cluster': CnpgCluster,
  'postgresql.cnpg.io/v1/ScheduledBackup': CnpgScheduledBackup,
};
