export * from './errors';
export * from './state';
export * from './store';
export * from './keygen';
export * from './signal-stores';
export * from './http-client';
export * from './socket';
export * from './device-client';
