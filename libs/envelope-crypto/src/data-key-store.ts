import type { WrappedKey } from './key-provider';

/** What TypeORM's DataSource, EntityManager and QueryRunner all offer. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

export interface DataKeyRecord extends WrappedKey {
  tenant: string;
}

/** DDL of a service's data-key table, for its migration (each service keeps its own keys). */
export function dataKeysTableDdl(schema: string): { up: string; down: string } {
  return {
    up: `CREATE TABLE "${schema}"."data_keys" ("tenant" text PRIMARY KEY, "master_key_id" text NOT NULL, "wrapped" bytea NOT NULL, "created_at" timestamptz NOT NULL DEFAULT now(), "rewrapped_at" timestamptz)`,
    down: `DROP TABLE "${schema}"."data_keys"`,
  };
}

/** Wrapped per-tenant data keys in the owning service's schema. */
export class DataKeyStore {
  private readonly table: string;

  constructor(
    private readonly db: Queryable,
    schema: string,
  ) {
    if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
    this.table = `"${schema}"."data_keys"`;
  }

  async get(tenant: string): Promise<DataKeyRecord | null> {
    const rows = (await this.db.query(
      `SELECT tenant, master_key_id, wrapped FROM ${this.table} WHERE tenant = $1`,
      [tenant],
    )) as { tenant: string; master_key_id: string; wrapped: Buffer }[];
    return rows[0]
      ? { tenant: rows[0].tenant, masterKeyId: rows[0].master_key_id, blob: rows[0].wrapped }
      : null;
  }

  /** Inserts unless another process won the race; returns the stored record either way. */
  async insertIfAbsent(rec: DataKeyRecord): Promise<DataKeyRecord> {
    await this.db.query(
      `INSERT INTO ${this.table} (tenant, master_key_id, wrapped) VALUES ($1, $2, $3) ON CONFLICT (tenant) DO NOTHING`,
      [rec.tenant, rec.masterKeyId, rec.blob],
    );
    const stored = await this.get(rec.tenant);
    if (!stored) throw new Error(`data key for ${rec.tenant} vanished during creation`);
    return stored;
  }

  /** Replaces the wrapping only if nobody else changed it meanwhile (optimistic, for rotation). */
  async rewrap(tenant: string, from: WrappedKey, to: WrappedKey): Promise<boolean> {
    const r = (await this.db.query(
      `UPDATE ${this.table} SET master_key_id = $2, wrapped = $3, rewrapped_at = now() WHERE tenant = $1 AND master_key_id = $4 AND wrapped = $5 RETURNING tenant`,
      [tenant, to.masterKeyId, to.blob, from.masterKeyId, from.blob],
    )) as unknown[];
    return flatten(r).length > 0;
  }

  async delete(tenant: string): Promise<boolean> {
    const r = (await this.db.query(`DELETE FROM ${this.table} WHERE tenant = $1 RETURNING tenant`, [
      tenant,
    ])) as unknown[];
    return flatten(r).length > 0;
  }

  async listNotWrappedWith(masterKeyId: string, limit: number): Promise<DataKeyRecord[]> {
    const rows = (await this.db.query(
      `SELECT tenant, master_key_id, wrapped FROM ${this.table} WHERE master_key_id <> $1 ORDER BY tenant LIMIT $2`,
      [masterKeyId, limit],
    )) as { tenant: string; master_key_id: string; wrapped: Buffer }[];
    return rows.map((r) => ({ tenant: r.tenant, masterKeyId: r.master_key_id, blob: r.wrapped }));
  }
}

/** TypeORM returns [rows, count] for UPDATE/DELETE ... RETURNING on Postgres, plain rows otherwise. */
function flatten(r: unknown[]): unknown[] {
  return Array.isArray(r[0]) && typeof r[1] === 'number' ? (r[0] as unknown[]) : r;
}
