export * from './aead';
export * from './key-provider';
export * from './data-key-store';
export * from './key-ring';
