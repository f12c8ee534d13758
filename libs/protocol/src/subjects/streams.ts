import type { StreamKey } from './define';

export interface StreamDef {
  /** Event-name prefixes this stream captures (subject `<root>.v1.<prefix>.>`). */
  readonly prefixes: readonly string[];
  readonly description: string;
  /** True when payloads carry message content: max age is then capped by the retention limit. */
  readonly carriesContent: boolean;
  /** Allow direct get (any server of the stream answers reads by sequence/subject). */
  readonly directGet?: boolean;
}

export const STREAMS: Record<StreamKey, StreamDef> = {
  DEVICE_ENVELOPES: {
    prefixes: ['device'],
    description: 'Encrypted envelopes from user devices, durable before the device is acked.',
    carriesContent: true,
    // crypto reads a session's earlier envelopes back by subject before decrypting a later one.
    directGet: true,
  },
  INBOUND: {
    prefixes: ['inbound'],
    description: 'Decrypted user messages and decrypt failures, per business phone number.',
    carriesContent: true,
  },
  OUTBOUND: {
    prefixes: ['outbound'],
    description: 'Messages businesses sent through the API, and encryption failures.',
    carriesContent: true,
  },
  DELIVERY: {
    prefixes: ['delivery'],
    description: 'Ciphertexts for one user device each.',
    carriesContent: true,
    // storage reads a device's earlier ciphertexts back by subject before queuing a later one.
    directGet: true,
  },
  STATUS: { prefixes: ['status'], description: 'Statuses of outbound messages.', carriesContent: false },
  BUSINESS: {
    prefixes: ['business'],
    description: 'Number lifecycle, erasure orders and abuse reports.',
    carriesContent: false,
  },
  INTEGRATOR: {
    prefixes: ['integrator'],
    description: 'Cloud-API webhook payloads per phone number for integrators who consume NATS.',
    carriesContent: true,
  },
};
