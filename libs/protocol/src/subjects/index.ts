export * from './define';
export * from './streams';
export * from './map';
export * from './naming';
