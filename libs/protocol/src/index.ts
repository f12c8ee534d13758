export * from './ids';
export * from './schemas';
export * from './subjects';
export * from './errors';
export * from './cloud-api-errors';
export * from './spec';
export * from './device';
