import type { QueryRunner } from 'typeorm';
import { forChunks, rows, valuesList } from '../common/sql';
import { packSessionState, unpackSessionState, type Vault } from '../keys/vault';

export interface SessionKey {
  pn: string;
  waId: string;
  deviceId: number;
}
export interface SessionState {
  identity: Uint8Array | null;
  session: Uint8Array | null;
  /** Stream sequence of the last device envelope applied (null: none recorded yet). */
  cursor?: number | null;
}

export const sessionKeyOf = (k: SessionKey): string => `${k.pn}|${k.waId}|${k.deviceId}`;

const cmp = (a: SessionKey, b: SessionKey) =>
  a.pn < b.pn ? -1 : a.pn > b.pn ? 1 : a.waId < b.waId ? -1 : a.waId > b.waId ? 1 : a.deviceId - b.deviceId;

interface Row {
  pn: string;
  wa_id: string;
  device_id: number;
  state: Buffer | null;
  last_seq: string | null;
}

/**
 * Sessions with users' devices, one row per (number, user, device): the row lock is the session's
 * single-writer guarantee across every crypto process (see README "One session, one writer").
 */
export class SessionRepository {
  constructor(private readonly vault: Vault) {}

  /**
   * Locks the rows of these sessions FOR UPDATE inside the caller's transaction and returns their state.
   * A session that does not exist yet gets an empty row first, so it has a row to lock as well; rows are
   * always locked in key order, so two batches never wait on each other in a cycle.
   */
  async lock(runner: QueryRunner, keys: SessionKey[]): Promise<Map<string, SessionState>> {
    const sorted = dedupe(keys).sort(cmp);
    const out = new Map<string, SessionState>();
    if (sorted.length === 0) return out;
    await this.read(runner, sorted, out);
    const missing = sorted.filter((k) => !out.has(sessionKeyOf(k)));
    if (missing.length > 0) {
      await runner.query(
        `INSERT INTO crypto.sessions (phone_number_id, wa_id, device_id)
         SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[]) ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING`,
        columns(missing),
      );
      await this.read(runner, missing, out);
    }
    return out;
  }

  /**
   * Stores new session state; `seq` (inbound) also moves the session's cursor forward in the same row
   * update (see advance), so a batch writes each session row once.
   */
  async save(runner: QueryRunner, updates: (SessionKey & SessionState & { seq?: number })[]): Promise<void> {
    if (updates.length === 0) return;
    const sealed = await Promise.all(
      updates.map((u) =>
        this.vault.seal(u.pn, 'session', `${u.waId}:${u.deviceId}`, packSessionState(u.identity, u.session)),
      ),
    );
    await forChunks(updates, async (chunk, at) => {
      await runner.query(
        `UPDATE crypto.sessions s SET state = u.state, updated_at = now(), last_seq = GREATEST(s.last_seq, u.seq)
         FROM (VALUES ${valuesList(chunk.length, ['text', 'text', 'smallint', 'bytea', 'bigint'])}) AS u(pn, wa, dev, state, seq)
         WHERE s.phone_number_id = u.pn AND s.wa_id = u.wa AND s.device_id = u.dev`,
        chunk.flatMap((u, i) => [u.pn, u.waId, u.deviceId, sealed[at + i], u.seq ?? null]),
      );
    });
  }

  /**
   * Records the stream sequence of the last device envelope applied to each session. It only moves
   * forward: an envelope applied out of order (older than the cursor) does not rewind it.
   */
  async advance(runner: QueryRunner, cursors: (SessionKey & { seq: number })[]): Promise<void> {
    if (cursors.length === 0) return;
    await runner.query(
      `UPDATE crypto.sessions s SET last_seq = GREATEST(s.last_seq, u.seq)
       FROM unnest($1::text[], $2::text[], $3::smallint[], $4::bigint[]) AS u(pn, wa, dev, seq)
       WHERE s.phone_number_id = u.pn AND s.wa_id = u.wa AND s.device_id = u.dev`,
      [...columns(cursors), cursors.map((c) => c.seq)],
    );
  }

  /** Removes rows that were created only to be locked and stayed empty (e.g. a failed first message). */
  async deleteEmpty(runner: QueryRunner, keys: SessionKey[]): Promise<void> {
    if (keys.length === 0) return;
    await runner.query(
      `DELETE FROM crypto.sessions WHERE state IS NULL
       AND (phone_number_id, wa_id, device_id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[]))`,
      columns(keys),
    );
  }

  /** Devices of each (number, user) that have a session (outbound fan-out). */
  async devicesWithSession(
    runner: QueryRunner,
    pairs: { pn: string; waId: string }[],
  ): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    if (pairs.length === 0) return out;
    const found = await rows<{ pn: string; wa_id: string; device_id: number }>(
      runner,
      `SELECT phone_number_id AS pn, wa_id, device_id FROM crypto.sessions
       WHERE (phone_number_id, wa_id) IN (SELECT * FROM unnest($1::text[], $2::text[])) AND state IS NOT NULL
       ORDER BY device_id`,
      [pairs.map((p) => p.pn), pairs.map((p) => p.waId)],
    );
    for (const r of found) {
      const k = `${r.pn}|${r.wa_id}`;
      out.set(k, [...(out.get(k) ?? []), Number(r.device_id)]);
    }
    return out;
  }

  private async read(runner: QueryRunner, keys: SessionKey[], out: Map<string, SessionState>): Promise<void> {
    const found = await rows<Row>(
      runner,
      `SELECT phone_number_id AS pn, wa_id, device_id, state, last_seq FROM crypto.sessions
       WHERE (phone_number_id, wa_id, device_id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[]))
       ORDER BY phone_number_id, wa_id, device_id FOR UPDATE`,
      columns(keys),
    );
    await Promise.all(
      found.map(async (r) => {
        const key = { pn: r.pn, waId: r.wa_id, deviceId: Number(r.device_id) };
        const state = r.state
          ? unpackSessionState(await this.vault.open(r.pn, 'session', `${key.waId}:${key.deviceId}`, r.state))
          : { identity: null, session: null };
        out.set(sessionKeyOf(key), { ...state, cursor: r.last_seq === null ? null : Number(r.last_seq) });
      }),
    );
  }
}

function columns(keys: SessionKey[]): [string[], string[], number[]] {
  return [keys.map((k) => k.pn), keys.map((k) => k.waId), keys.map((k) => k.deviceId)];
}

function dedupe(keys: SessionKey[]): SessionKey[] {
  return [...new Map(keys.map((k) => [sessionKeyOf(k), k])).values()];
}
