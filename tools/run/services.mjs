// The environment each service process gets from the run command.
export const SERVICES = ['gateway', 'business-forwarding', 'crypto', 'storage'];

export function serviceEnv(service, { env, natsUrl, databaseUrl, port, secrets }) {
  return {
    ...env,
    ...Object.fromEntries(Object.entries(secrets).filter(([k]) => env[k] === undefined)),
    // A local run: development unless told otherwise (production needs a real SMS verification hook).
    NODE_ENV: env.NODE_ENV ?? 'development',
    LOG_LEVEL: env.LOG_LEVEL ?? 'info',
    NATS_URL: natsUrl,
    DATABASE_URL: databaseUrl,
    HTTP_PORT: String(port),
    HTTP_HOST: env.HTTP_HOST ?? '127.0.0.1',
    // npm sets these for its own children; the services do not need them.
    npm_config_argv: undefined,
    SERVICE_NAME: service,
  };
}
