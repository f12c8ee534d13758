export * from './frames';
export * from './http';
