import { EVENTS, NOTIFICATIONS, RPCS, type EventName, type NotifyName, type RpcName } from './map';
import type { StreamKey } from './define';
import { STREAMS } from './streams';

export const SUBJECT_VERSION = 'v1';
const ROOT_RE = /^[a-z][a-z0-9_-]{0,31}$/;
/** A token must never contain subject syntax, or a tenant could subscribe to another's subjects. */
const TOKEN_RE = /^[A-Za-z0-9_-]{1,64}$/;

export function assertRoot(root: string): string {
  if (!ROOT_RE.test(root)) throw new Error(`invalid NATS subject root "${root}"`);
  return root;
}

function tokens(names: readonly string[], values: Record<string, string | number>): string[] {
  return names.map((n) => {
    const v = String(values[n] ?? '');
    if (!TOKEN_RE.test(v)) throw new Error(`invalid subject token ${n}="${v}"`);
    return v;
  });
}

/** Concrete subject to publish an event on. */
export function eventSubject<N extends EventName>(
  root: string,
  name: N,
  values: Record<(typeof EVENTS)[N]['tokens'][number], string | number>,
): string {
  return [assertRoot(root), SUBJECT_VERSION, name, ...tokens(EVENTS[name].tokens, values)].join('.');
}

/**
 * True when an event's durable consumers take its whole stream with no subject filter: the event is
 * alone in its stream, or it is the stream's bulk event (the others are rare and skipped). Why: NATS
 * 2.9 recounts a filtered consumer's pending messages by scanning its backlog as it delivers, so a
 * filtered consumer drains a deep backlog (after an outage, say) in quadratic time; an unfiltered one
 * counts by sequence. Measured: a crypto drain of 10,000 envelopes went from ~370 to ~1,350/s.
 */
export function consumesWholeStream(name: EventName): boolean {
  const def = EVENTS[name];
  if (def.bulk) return true;
  return (Object.keys(EVENTS) as EventName[]).every((n) => n === name || EVENTS[n].stream !== def.stream);
}

/** Subscription filter for an event: either every tenant or the given leading token values. */
export function eventFilter(root: string, name: EventName, ...leading: string[]): string {
  const def = EVENTS[name];
  const rest = def.tokens.map((_, i) =>
    i < leading.length ? tokens([def.tokens[i]], { [def.tokens[i]]: leading[i] })[0] : '*',
  );
  return [assertRoot(root), SUBJECT_VERSION, name, ...rest].join('.');
}

export function rpcSubject(root: string, name: RpcName): string {
  void RPCS[name];
  return [assertRoot(root), SUBJECT_VERSION, 'rpc', name].join('.');
}

export function notifySubject<N extends NotifyName>(
  root: string,
  name: N,
  values: Record<(typeof NOTIFICATIONS)[N]['tokens'][number], string | number>,
): string {
  return [
    assertRoot(root),
    SUBJECT_VERSION,
    'notify',
    name,
    ...tokens(NOTIFICATIONS[name].tokens, values),
  ].join('.');
}

export function notifyFilter(root: string, name: NotifyName): string {
  return [
    assertRoot(root),
    SUBJECT_VERSION,
    'notify',
    name,
    ...NOTIFICATIONS[name].tokens.map(() => '*'),
  ].join('.');
}

export function streamName(root: string, key: StreamKey): string {
  return `${assertRoot(root).toUpperCase().replace(/-/g, '_')}_${key}`;
}

export function streamSubjects(root: string, key: StreamKey): string[] {
  return STREAMS[key].prefixes.map((p) => [assertRoot(root), SUBJECT_VERSION, p, '>'].join('.'));
}

/** Reads the token values back from a concrete event subject. */
export function parseEventSubject(root: string, name: EventName, subject: string): Record<string, string> {
  const prefix = [root, SUBJECT_VERSION, name].join('.') + '.';
  if (!subject.startsWith(prefix)) throw new Error(`subject ${subject} is not a ${name} subject`);
  const parts = subject.slice(prefix.length).split('.');
  const names = EVENTS[name].tokens;
  if (parts.length !== names.length) throw new Error(`subject ${subject} has wrong token count`);
  return Object.fromEntries(names.map((n, i) => [n, parts[i]]));
}
