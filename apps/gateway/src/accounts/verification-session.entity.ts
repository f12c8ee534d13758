import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A phone-number verification in progress; the code is kept only as a salted SHA-256. */
@Entity({ name: 'verification_sessions' })
export class VerificationSessionRow {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'wa_id', type: 'text' })
  waId!: string;

  @Column({ name: 'code_hash', type: 'bytea' })
  codeHash!: Buffer;

  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  @Column({ name: 'verified_at', type: 'timestamptz', nullable: true })
  verifiedAt!: Date | null;

  @Column({ name: 'used_at', type: 'timestamptz', nullable: true })
  usedAt!: Date | null;
}
