import type { StoreDb } from '../db/store-db';

export type AuditAction = 'read' | 'purge' | 'erase' | 'region_change_refused';

export interface AuditEntry {
  action: AuditAction;
  /** Who caused it: a service ("gateway"), "storage" for its own schedule, or the erasure's waba. */
  actor: string;
  purpose: string;
  at: Date;
  phoneNumberId?: string;
  requestId?: string;
  /** Numbers only (rows read, purged, erased). */
  counts?: Record<string, number>;
  /** Ids of messages whose content was read; never content. */
  wamids?: string[];
}

interface Queryable {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

/**
 * The audit trail, kept in the database the audited data lives in (a regional number's reads stay in its
 * region). It holds ids and counts, never message content or user identifiers.
 */
export async function audit(db: StoreDb | Queryable, entry: AuditEntry): Promise<void> {
  const q: Queryable = 'ds' in db ? db.ds : db;
  await q.query(
    `INSERT INTO storage.audit_log (at, action, actor, purpose, phone_number_id, request_id, counts, wamids)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      entry.at,
      entry.action,
      entry.actor,
      entry.purpose,
      entry.phoneNumberId ?? null,
      entry.requestId ?? null,
      JSON.stringify(entry.counts ?? {}),
      entry.wamids ?? null,
    ],
  );
}
