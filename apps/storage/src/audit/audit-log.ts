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
  await auditMany(db, [entry]);
}

/** Several entries in one INSERT: a batch of reads is audited in one round trip, one row per read. */
export async function auditMany(db: StoreDb | Queryable, entries: AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const q: Queryable = 'ds' in db ? db.ds : db;
  const params: unknown[] = [];
  const rows = entries.map((entry) => {
    const base = params.length;
    params.push(
      entry.at,
      entry.action,
      entry.actor,
      entry.purpose,
      entry.phoneNumberId ?? null,
      entry.requestId ?? null,
      JSON.stringify(entry.counts ?? {}),
      entry.wamids ?? null,
    );
    return `(${Array.from({ length: 8 }, (_, i) => `$${base + i + 1}`).join(', ')})`;
  });
  await q.query(
    `INSERT INTO storage.audit_log (at, action, actor, purpose, phone_number_id, request_id, counts, wamids)
     VALUES ${rows.join(', ')}`,
    params,
  );
}
