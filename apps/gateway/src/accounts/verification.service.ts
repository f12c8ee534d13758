import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource, type EntityManager } from 'typeorm';
import { APP_CONFIG, APP_LOGGER, CLOCK, type Clock } from '@relay/platform';
import type { CreateVerificationResponse } from '@relay/protocol';
import type { GatewayConfig } from '../config';
import { GatewayError } from '../http/gateway-error';
import { RateLimiter } from '../ratelimit/rate-limiter';
import { hashCode, newVerificationCode } from '../auth/credentials';
import { VerificationSessionRow } from './verification-session.entity';
import { VERIFICATION_SENDER, type VerificationSender } from './verification-sender';
import { returnedRows } from '../http/sql';

const MAX_ATTEMPTS = 5;

/** Proves ownership of a phone number: a 6-digit code sent by the pluggable sender, 5 tries, short TTL. */
@Injectable()
export class VerificationService {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(VERIFICATION_SENDER) private readonly sender: VerificationSender,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
    @Inject(APP_CONFIG) private readonly config: GatewayConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(APP_LOGGER) private readonly log: Logger,
  ) {}

  async start(waId: string): Promise<CreateVerificationResponse> {
    await this.limiter.consume('verification', waId);
    const id = randomUUID();
    const code = newVerificationCode();
    const expiresAt = new Date(this.clock.now().getTime() + this.config.VERIFICATION_TTL_MS);
    const repo = this.ds.getRepository(VerificationSessionRow);
    await repo.insert({ id, waId, codeHash: hashCode(id, code), attempts: 0, expiresAt });
    try {
      await this.sender.send({ wa_id: waId, code, session_id: id, expires_at: expiresAt.toISOString() });
    } catch (err) {
      await repo.delete({ id });
      this.log.warn({ err: (err as Error).message }, 'verification code could not be sent');
      throw new GatewayError('unavailable', 'verification code could not be sent, retry later');
    }
    return {
      session_id: id,
      expires_at: expiresAt.toISOString(),
      ...(this.sender.echoesCode ? { demo_code: code } : {}),
    };
  }

  async submit(sessionId: string, code: string): Promise<void> {
    // Counting the attempt and reading the hash in one statement: parallel guesses cannot exceed the cap.
    const rows = returnedRows<{ code_hash: Buffer }>(
      await this.ds.query(
        `UPDATE "gateway"."verification_sessions" SET attempts = attempts + 1
        WHERE id = $1 AND attempts < $2 AND expires_at > $3 AND verified_at IS NULL
        RETURNING code_hash`,
        [sessionId, MAX_ATTEMPTS, this.clock.now()],
      ),
    );
    const row = rows[0];
    if (!row)
      throw new GatewayError(
        'not_found',
        'no open verification session (expired, verified or too many attempts)',
      );
    if (!hashCode(sessionId, code).equals(row.code_hash)) {
      throw new GatewayError('verification_failed', 'wrong code');
    }
    await this.ds
      .getRepository(VerificationSessionRow)
      .update({ id: sessionId }, { verifiedAt: this.clock.now() });
  }

  /** Spends a verified session inside the registration's transaction; returns its number. */
  async consume(em: EntityManager, sessionId: string): Promise<string> {
    const rows = returnedRows<{ wa_id: string }>(
      await em.query(
        `UPDATE "gateway"."verification_sessions" SET used_at = $2
        WHERE id = $1 AND verified_at IS NOT NULL AND used_at IS NULL AND expires_at > $2
        RETURNING wa_id`,
        [sessionId, this.clock.now()],
      ),
    );
    if (!rows[0])
      throw new GatewayError('forbidden', 'verification session is not verified, expired or already used');
    return rows[0].wa_id;
  }
}
