import { z } from 'zod';
import { EVENTS, NOTIFICATIONS, RPCS } from './subjects/map';
import { STREAMS } from './subjects/streams';
import { SUBJECT_VERSION } from './subjects/naming';
import type { EventDef, NotifyDef, RpcDef } from './subjects/define';

const schemaOf = (s: z.ZodType) => z.toJSONSchema(s, { target: 'draft-2020-12', unrepresentable: 'any' });

/**
 * AsyncAPI 3.0 document of every subject, generated from the same zod schemas that validate payloads at
 * runtime, so the published spec cannot drift from what services accept.
 */
export function buildAsyncApi(root = 'relay'): Record<string, unknown> {
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  const id = (n: string) => n.replace(/[^A-Za-z0-9]/g, '_');

  for (const [name, d] of Object.entries(EVENTS) as [string, EventDef][]) {
    const address = [root, SUBJECT_VERSION, name, ...d.tokens.map((t) => `{${t}}`)].join('.');
    messages[id(name)] = { name, payload: schemaOf(d.schema), contentType: 'application/json' };
    channels[id(name)] = {
      address,
      description: `${d.description} JetStream stream ${root.toUpperCase()}_${d.stream}.`,
      parameters: Object.fromEntries(d.tokens.map((t) => [t, { description: t }])),
      messages: { [id(name)]: { $ref: `#/components/messages/${id(name)}` } },
      'x-stream': d.stream,
      'x-producers': d.producers,
      'x-consumers': d.consumers,
    };
    operations[`publish_${id(name)}`] = { action: 'send', channel: { $ref: `#/channels/${id(name)}` } };
  }
  for (const [name, d] of Object.entries(RPCS) as [string, RpcDef][]) {
    const cid = `rpc_${id(name)}`;
    messages[`${cid}_request`] = { name: `${name} request`, payload: schemaOf(d.request) };
    messages[`${cid}_reply`] = {
      name: `${name} reply`,
      payload: {
        oneOf: [
          {
            type: 'object',
            properties: { ok: { const: true }, data: schemaOf(d.response) },
            required: ['ok', 'data'],
          },
          {
            type: 'object',
            properties: {
              ok: { const: false },
              error: {
                type: 'object',
                properties: { code: { type: 'string' }, message: { type: 'string' } },
              },
            },
            required: ['ok', 'error'],
          },
        ],
      },
    };
    channels[cid] = {
      address: [root, SUBJECT_VERSION, 'rpc', name].join('.'),
      description: `${d.description} Answered by ${d.responder} (queue group).`,
      messages: {
        request: { $ref: `#/components/messages/${cid}_request` },
        reply: { $ref: `#/components/messages/${cid}_reply` },
      },
    };
    operations[cid] = {
      action: 'receive',
      channel: { $ref: `#/channels/${cid}` },
      reply: { messages: [{ $ref: `#/channels/${cid}/messages/reply` }] },
    };
  }
  for (const [name, d] of Object.entries(NOTIFICATIONS) as [string, NotifyDef][]) {
    const cid = `notify_${id(name)}`;
    messages[cid] = { name, payload: schemaOf(d.schema) };
    channels[cid] = {
      address: [root, SUBJECT_VERSION, 'notify', name, ...d.tokens.map((t) => `{${t}}`)].join('.'),
      description: d.description,
      messages: { [cid]: { $ref: `#/components/messages/${cid}` } },
    };
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Relay NATS subjects',
      version: SUBJECT_VERSION,
      description: 'Every NATS subject of the relay. Streams: ' + Object.keys(STREAMS).join(', '),
      license: { name: 'AGPL-3.0-only' },
    },
    defaultContentType: 'application/json',
    channels,
    operations,
    components: { messages },
  };
}
