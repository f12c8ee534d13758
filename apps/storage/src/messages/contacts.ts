import type { StoreDb } from '../db/store-db';

export interface ContactTouch {
  phoneNumberId: string;
  waId: string;
  /** Time of the message or status update that touched the contact. */
  at: Date;
  profileName?: string;
}

/**
 * Records a contact (wa_id, sealed profile name) and the time of its last status update: the clock that
 * deletes the identifier USER_IDENTIFIER_RETENTION_DAYS later. Rows are locked in key order so
 * concurrent batches never deadlock. Returned as SQL (its parameters numbered from `first`) and parameters, for a writer to run
 * as part of its own statement (one round trip for a batch's rows and their contacts); null when there
 * is nothing to touch.
 */
export async function contactsUpsert(
  db: StoreDb,
  touches: ContactTouch[],
): Promise<{ sql: (first: number) => string; params: unknown[] } | null> {
  const merged = new Map<string, ContactTouch>();
  for (const t of touches) {
    const key = `${t.phoneNumberId}|${t.waId}`;
    const prev = merged.get(key);
    merged.set(key, {
      ...t,
      at: prev && prev.at > t.at ? prev.at : t.at,
      profileName: t.profileName ?? prev?.profileName,
    });
  }
  const rows = [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, t]) => t);
  if (rows.length === 0) return null;
  const names: (Buffer | null)[] = [];
  for (const r of rows) {
    names.push(
      r.profileName === undefined
        ? null
        : await db.keys.encrypt(r.phoneNumberId, Buffer.from(r.profileName), `contact:${r.waId}`),
    );
  }
  return {
    sql: (f) =>
      `INSERT INTO storage.contacts (phone_number_id, wa_id, profile_name_sealed, last_status_at)
     SELECT * FROM unnest($${f}::text[], $${f + 1}::text[], $${f + 2}::bytea[], $${f + 3}::timestamptz[])
     ON CONFLICT (phone_number_id, wa_id) DO UPDATE SET
       last_status_at = GREATEST(storage.contacts.last_status_at, EXCLUDED.last_status_at),
       profile_name_sealed = COALESCE(EXCLUDED.profile_name_sealed, storage.contacts.profile_name_sealed)`,
    params: [rows.map((r) => r.phoneNumberId), rows.map((r) => r.waId), names, rows.map((r) => r.at)],
  };
}
