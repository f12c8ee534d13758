/** DI tokens of this service's adapters and config. */
export const BF_CONFIG = Symbol('BF_CONFIG');
export const CRYPTO = Symbol('CRYPTO');
export const WEBHOOK_HTTP = Symbol('WEBHOOK_HTTP');
export const RANDOM = Symbol('RANDOM');

/** Source of jitter, injectable so tests can pin it. */
export type RandomSource = () => number;
