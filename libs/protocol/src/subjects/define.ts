import type { z } from 'zod';

/** A durable event: published to JetStream, consumed by durable consumers. */
export interface EventDef<S extends z.ZodType = z.ZodType> {
  readonly kind: 'event';
  readonly stream: StreamKey;
  /** Names of the subject tokens after the event name, e.g. ['phone_number_id']. */
  readonly tokens: readonly string[];
  readonly schema: S;
  readonly description: string;
  readonly producers: readonly ServiceName[];
  readonly consumers: readonly ServiceName[];
  /**
   * The stream's bulk event: its consumers read the whole stream without a subject filter and skip
   * the stream's other events (which must be rare next to it). See consumesWholeStream.
   */
  readonly bulk?: boolean;
}

/** A request/reply query over core NATS, answered by one member of the responder's queue group. */
export interface RpcDef<Q extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  readonly kind: 'rpc';
  readonly responder: ServiceName;
  readonly request: Q;
  readonly response: R;
  readonly description: string;
}

/** A best-effort core NATS notification (a wake-up; losing one costs latency, never data). */
export interface NotifyDef<S extends z.ZodType = z.ZodType> {
  readonly kind: 'notify';
  readonly tokens: readonly string[];
  readonly schema: S;
  readonly description: string;
}

export type ServiceName = 'gateway' | 'crypto' | 'business-forwarding' | 'storage';

export type StreamKey =
  'DEVICE_ENVELOPES' | 'INBOUND' | 'OUTBOUND' | 'DELIVERY' | 'STATUS' | 'BUSINESS' | 'INTEGRATOR';

export const event = <S extends z.ZodType>(def: Omit<EventDef<S>, 'kind'>): EventDef<S> => ({
  kind: 'event',
  ...def,
});
export const rpc = <Q extends z.ZodType, R extends z.ZodType>(
  def: Omit<RpcDef<Q, R>, 'kind'>,
): RpcDef<Q, R> => ({
  kind: 'rpc',
  ...def,
});
export const notify = <S extends z.ZodType>(def: Omit<NotifyDef<S>, 'kind'>): NotifyDef<S> => ({
  kind: 'notify',
  ...def,
});
