export * from './database';
export * from './nats';
export * from './env';
export * from './ports';
