export * from './content';
export * from './inbound';
export * from './outbound';
export * from './status';
export * from './business';
export * from './keys';
export * from './storage';
export * from './webhook';
