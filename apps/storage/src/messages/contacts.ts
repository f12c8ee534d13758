import type { StoreDb, Tx } from '../db/store-db';

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
 * concurrent batches never deadlock.
 */
export async function upsertContacts(tx: Tx, db: StoreDb, touches: ContactTouch[]): Promise<void> {
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
  if (rows.length === 0) return;
  const names: (Buffer | null)[] = [];
  for (const r of rows) {
    names.push(
      r.profileName === undefined
        ? null
        : await db.keys.encrypt(r.phoneNumberId, Buffer.from(r.profileName), `contact:${r.waId}`),
    );
  }
  await tx.query(
    `INSERT INTO storage.contacts (phone_number_id, wa_id, profile_name_sealed, last_status_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::timestamptz[])
     ON CONFLICT (phone_number_id, wa_id) DO UPDATE SET
       last_status_at = GREATEST(storage.contacts.last_status_at, EXCLUDED.last_status_at),
       profile_name_sealed = COALESCE(EXCLUDED.profile_name_sealed, storage.contacts.profile_name_sealed)`,
    [rows.map((r) => r.phoneNumberId), rows.map((r) => r.waId), names, rows.map((r) => r.at)],
  );
}
