import { z } from 'zod';
import {
  AbuseReport,
  BusinessBundleRequest,
  DeviceBundlesRequest,
  DeviceBundlesResponse,
  DeviceCiphertext,
  DeviceEnvelope,
  EraseCompleted,
  EraseRequest,
  InboundFailure,
  InboundMessage,
  MessageStatus,
  NumberDeregistered,
  NumberRegistered,
  OutboundFailure,
  OutboundRequest,
  PendingAck,
  PendingAckResponse,
  PendingRequest,
  PendingResponse,
  PreKeyBundle,
  WebhookEnvelope,
} from '../schemas';
import { DeviceAddress } from '../ids';
import { event, notify, rpc } from './define';

/**
 * Every NATS subject of the relay, tied to its payload schema. A subject is
 * `<root>.v1.<name>[.<token>...]`; root defaults to "relay" and is configurable so that test runs and
 * tenants of a shared NATS never see each other's traffic. Breaking a payload means a new version (v2)
 * of the subject, published side by side until consumers move.
 */
export const EVENTS = {
  'device.envelope': event({
    stream: 'DEVICE_ENVELOPES',
    // One subject per Signal session: crypto reads a session's envelopes back in stream order.
    tokens: ['phone_number_id', 'wa_id', 'device_id'],
    schema: DeviceEnvelope,
    description:
      "A Signal envelope a user device sent to a business; one subject per session (business number, user, device), so crypto can apply a session's envelopes in stream order.",
    producers: ['gateway'],
    consumers: ['crypto'],
  }),
  'inbound.message': event({
    stream: 'INBOUND',
    tokens: ['phone_number_id'],
    schema: InboundMessage,
    description: 'A decrypted user message for a business (integrators may subscribe).',
    producers: ['crypto'],
    consumers: ['storage', 'business-forwarding'],
    bulk: true,
  }),
  'inbound.failure': event({
    stream: 'INBOUND',
    tokens: ['phone_number_id'],
    schema: InboundFailure,
    description: 'An envelope that could not be decrypted or parsed, with a reason code.',
    producers: ['crypto'],
    consumers: ['gateway', 'business-forwarding'],
  }),
  'outbound.request': event({
    stream: 'OUTBOUND',
    tokens: ['phone_number_id'],
    schema: OutboundRequest,
    description: 'A message a business sent through the API, accepted and assigned a wamid.',
    producers: ['business-forwarding'],
    consumers: ['crypto', 'storage'],
    bulk: true,
  }),
  'outbound.failure': event({
    stream: 'OUTBOUND',
    tokens: ['phone_number_id'],
    schema: OutboundFailure,
    description: 'An outbound message that could not be encrypted for the recipient.',
    producers: ['crypto'],
    consumers: ['business-forwarding', 'storage'],
  }),
  'delivery.ciphertext': event({
    stream: 'DELIVERY',
    tokens: ['wa_id', 'device_id'],
    schema: DeviceCiphertext,
    description:
      'An outbound message encrypted for one device of the recipient. storage queues it and wakes the gateway (device.pending), which pushes it from the queue.',
    producers: ['crypto'],
    consumers: ['storage'],
  }),
  'status.update': event({
    stream: 'STATUS',
    tokens: ['phone_number_id'],
    schema: MessageStatus,
    description: 'sent / delivered / read / failed for an outbound message.',
    producers: ['gateway', 'storage', 'crypto'],
    consumers: ['business-forwarding', 'storage'],
  }),
  'business.number_registered': event({
    stream: 'BUSINESS',
    tokens: ['phone_number_id'],
    schema: NumberRegistered,
    description: 'A business phone number was registered; crypto provisions its Signal identity.',
    producers: ['business-forwarding'],
    consumers: ['crypto', 'storage'],
  }),
  'business.number_deregistered': event({
    stream: 'BUSINESS',
    tokens: ['phone_number_id'],
    schema: NumberDeregistered,
    description: 'A business phone number was deregistered.',
    producers: ['business-forwarding'],
    consumers: ['crypto', 'storage'],
  }),
  'business.erase_requested': event({
    stream: 'BUSINESS',
    tokens: ['waba_id'],
    schema: EraseRequest,
    description: "Erase one user's data for a business, or all of a business's data.",
    producers: ['business-forwarding'],
    consumers: ['crypto', 'storage', 'gateway'],
  }),
  'business.erase_completed': event({
    stream: 'BUSINESS',
    tokens: ['service'],
    schema: EraseCompleted,
    description: 'One service finished its part of an erasure (counts only, never content).',
    producers: ['crypto', 'storage', 'gateway', 'business-forwarding'],
    consumers: ['business-forwarding'],
  }),
  'business.abuse_report': event({
    stream: 'BUSINESS',
    tokens: ['phone_number_id'],
    schema: AbuseReport,
    description: 'A user reported a business as spam, blocked or unblocked it.',
    producers: ['gateway'],
    consumers: ['business-forwarding'],
  }),
  'integrator.webhook': event({
    stream: 'INTEGRATOR',
    tokens: ['phone_number_id'],
    schema: WebhookEnvelope,
    description:
      'Exactly the Cloud API webhook body (one message or one status) delivered to the business, for integrators who consume NATS instead of webhooks.',
    producers: ['business-forwarding'],
    consumers: [],
  }),
} as const;

export const RPCS = {
  'crypto.business_bundle': rpc({
    responder: 'crypto',
    request: BusinessBundleRequest,
    response: PreKeyBundle,
    description: "A business number's prekey bundle; one-time keys are consumed atomically.",
  }),
  'gateway.device_bundles': rpc({
    responder: 'gateway',
    request: DeviceBundlesRequest,
    response: DeviceBundlesResponse,
    description: "Prekey bundles of a user's devices; one-time keys are consumed atomically.",
  }),
  'storage.pending': rpc({
    responder: 'storage',
    request: PendingRequest,
    response: PendingResponse,
    description: "A device's queued messages, oldest first (retransmission after reconnect).",
  }),
  'storage.ack': rpc({
    responder: 'storage',
    request: PendingAck,
    response: PendingAckResponse,
    description: 'Remove messages a device acknowledged from its queue.',
  }),
} as const;

export const NOTIFICATIONS = {
  'device.pending': notify({
    tokens: ['wa_id', 'device_id'],
    schema: z.object({ to: DeviceAddress }).strict(),
    description: 'Wake the gateway holding a device connection: new messages are queued for it.',
  }),
  'device.failure': notify({
    tokens: ['wa_id', 'device_id'],
    schema: InboundFailure,
    description: 'gateway -> gateway replicas: tell the device (if connected here) its envelope failed.',
  }),
  'device.control': notify({
    tokens: ['wa_id', 'device_id'],
    schema: z
      .object({
        to: DeviceAddress,
        action: z.enum(['connected', 'removed']),
        connection_id: z.string().max(64),
        /** The connection's place in the device's connect order (absent from older gateways). */
        epoch: z.number().int().nonnegative().optional(),
      })
      .strict(),
    description:
      'gateway -> gateway replicas: a device connected elsewhere (connections with a lower epoch close 4409) or was removed.',
  }),
} as const;

export type EventName = keyof typeof EVENTS;
export type RpcName = keyof typeof RPCS;
export type NotifyName = keyof typeof NOTIFICATIONS;
export type EventPayload<N extends EventName> = z.infer<(typeof EVENTS)[N]['schema']>;
export type RpcRequest<N extends RpcName> = z.infer<(typeof RPCS)[N]['request']>;
export type RpcResponse<N extends RpcName> = z.infer<(typeof RPCS)[N]['response']>;
export type NotifyPayload<N extends NotifyName> = z.infer<(typeof NOTIFICATIONS)[N]['schema']>;
