import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { DynamicModule } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { z } from 'zod';
import type { ServiceName } from '@relay/protocol';
import { ConfigError, loadConfig, type BaseConfig } from '../config/config';
import { DatabaseUnavailableError } from '../database/data-source';
import { applyKeepAlive } from '../http/keep-alive';
import { createLogger, PinoNestLogger } from '../logging/logger';
import { CoreModule } from './core.module';

export interface ServiceDefinition<S extends z.ZodType<BaseConfig>> {
  service: ServiceName;
  configSchema: S;
  /** The app's root module, built from its validated config. */
  module: (config: z.infer<S>) => DynamicModule;
  /** Body size limit of the HTTP edge (Nest's JSON parser, and the form parser when on). */
  bodyLimit?: string;
  /** Also parse application/x-www-form-urlencoded bodies (flat fields; JSON is always parsed). */
  formBodies?: boolean;
}

/** Boots a service: validated config, JSON logs, health, graceful shutdown. Used by every main.ts. */
export async function startService<S extends z.ZodType<BaseConfig>>(
  def: ServiceDefinition<S>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<NestExpressApplication> {
  const config = loadConfig(def.configSchema, env);
  const logger = createLogger(def.service, config.LOG_LEVEL);
  const app = await NestFactory.create<NestExpressApplication>(
    {
      module: class RootModule {},
      imports: [CoreModule.register(def.service, config, logger), def.module(config)],
    },
    { logger: new PinoNestLogger(logger), bodyParser: false, abortOnError: false },
  );
  app.useBodyParser('json', { limit: def.bodyLimit ?? '1mb' });
  if (def.formBodies)
    app.useBodyParser('urlencoded', { limit: def.bodyLimit ?? '1mb', extended: false, parameterLimit: 100 });
  applyKeepAlive(app.getHttpServer(), config.HTTP_KEEPALIVE_TIMEOUT_MS);
  await app.listen(config.HTTP_PORT, config.HTTP_HOST);
  const url = await app.getUrl();
  logger.info({ url, port: config.HTTP_PORT }, `${def.service} listening`);
  return app;
}

/**
 * main.ts entry: a bad config or a failed start ends the process with a message saying why. SIGINT and
 * SIGTERM close the app (consumers stop, in-flight work finishes and is acked, NATS drains, the database
 * closes) and the process exits 0; Nest's own shutdown hooks would re-raise the signal instead.
 */
export function runService<S extends z.ZodType<BaseConfig>>(def: ServiceDefinition<S>): void {
  let closing = false;
  const started = startService(def);
  const stop = () => {
    if (closing) return;
    closing = true;
    started
      .then(async (app) => {
        await app.close();
        process.exit(0);
      })
      .catch(() => process.exit(1));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  started.catch((err: unknown) => {
    if (err instanceof ConfigError || err instanceof DatabaseUnavailableError) {
      process.stderr.write(`${def.service}: ${err.message}\n`);
    } else {
      process.stderr.write(`${def.service}: failed to start: ${(err as Error).stack ?? String(err)}\n`);
    }
    process.exit(1);
  });
}
