/** DI tokens of the platform's shared providers. */
export const BASE_CONFIG = Symbol('BASE_CONFIG');
export const APP_CONFIG = Symbol('APP_CONFIG');
export const APP_LOGGER = Symbol('APP_LOGGER');
export const METRICS_REGISTRY = Symbol('METRICS_REGISTRY');
export const READINESS = Symbol('READINESS');
export const CLOCK = Symbol('CLOCK');
