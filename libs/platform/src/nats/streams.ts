import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from 'nats';
import { STREAMS, streamName, streamSubjects, type StreamKey } from '@relay/protocol';

const DAY_NS = 24 * 60 * 60 * 1e9;
const NS_PER_MS = 1e6;

export interface StreamOptions {
  root: string;
  /** Max age of streams that carry message content, in days (the retention limit, at most 30). */
  retentionDays: number;
  replicas?: number;
}

export function streamConfig(key: StreamKey, opts: StreamOptions): Partial<StreamConfig> {
  const def = STREAMS[key];
  const maxAgeDays = def.carriesContent ? opts.retentionDays : 30;
  return {
    name: streamName(opts.root, key),
    subjects: streamSubjects(opts.root, key),
    description: def.description,
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: maxAgeDays * DAY_NS,
    // JetStream drops a re-publish with the same Nats-Msg-Id inside this window (producer retries).
    duplicate_window: 10 * 60 * 1000 * NS_PER_MS,
    num_replicas: opts.replicas ?? 1,
    allow_direct: def.directGet ?? false,
  };
}

/** Creates or updates every stream; safe to run from every replica at every start. */
export async function ensureStreams(jsm: JetStreamManager, opts: StreamOptions): Promise<void> {
  for (const key of Object.keys(STREAMS) as StreamKey[]) {
    const cfg = streamConfig(key, opts);
    const name = streamName(opts.root, key);
    try {
      await jsm.streams.info(name);
      await jsm.streams.update(name, cfg);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        await jsm.streams.add(cfg);
      } catch (addErr) {
        // Another replica created it between our info and add.
        if (!String((addErr as Error).message).includes('already in use')) throw addErr;
      }
    }
  }
}

export function isNotFound(err: unknown): boolean {
  const e = err as { code?: string; api_error?: { err_code?: number }; message?: string };
  return (
    e?.code === '404' ||
    e?.api_error?.err_code === 10059 ||
    e?.api_error?.err_code === 10014 ||
    /not found/i.test(e?.message ?? '')
  );
}
