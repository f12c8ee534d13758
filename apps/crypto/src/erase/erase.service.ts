import type { DataSource } from 'typeorm';
import type { EraseRequest } from '@relay/protocol';
import { inTransaction, rows } from '../common/sql';
import type { Vault } from '../keys/vault';

/**
 * Erasure: scope user deletes that user's sessions (and their identity keys, stored with them) and
 * pending outbox rows for the listed numbers; scope business destroys each number's data key
 * (crypto-shredding: every sealed blob of it, backups included, becomes unreadable) and deletes its rows.
 */
export class EraseService {
  constructor(
    private readonly ds: DataSource,
    private readonly vault: Vault,
  ) {}

  async erase(req: EraseRequest): Promise<Record<string, number>> {
    const pns = req.phone_number_ids;
    if (req.scope === 'user' && req.wa_id) {
      const wa = req.wa_id;
      return inTransaction(this.ds, async (r) => {
        const sessions = await rows(
          r,
          `DELETE FROM crypto.sessions WHERE phone_number_id = ANY($1) AND wa_id = $2 RETURNING 1`,
          [pns, wa],
        );
        const outbox = await rows(
          r,
          `DELETE FROM crypto.outbox WHERE phone_number_id = ANY($1) AND wa_id = $2 RETURNING 1`,
          [pns, wa],
        );
        return { sessions: sessions.length, outbox_events: outbox.length };
      });
    }
    const counts = { data_keys: 0, identities: 0, sessions: 0, outbox_events: 0 };
    for (const pn of pns) {
      // Destroy the key first: if we crash before the deletes, the remaining rows are already unreadable.
      if (await this.vault.destroy(pn)) counts.data_keys++;
      await inTransaction(this.ds, async (r) => {
        counts.sessions += (
          await rows(r, `DELETE FROM crypto.sessions WHERE phone_number_id = $1 RETURNING 1`, [pn])
        ).length;
        counts.outbox_events += (
          await rows(r, `DELETE FROM crypto.outbox WHERE phone_number_id = $1 RETURNING 1`, [pn])
        ).length;
        counts.identities += (
          await rows(r, `DELETE FROM crypto.identities WHERE phone_number_id = $1 RETURNING 1`, [pn])
        ).length;
      });
    }
    return counts;
  }
}
