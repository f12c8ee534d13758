import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A user's block of a business number (reported to business-forwarding; erased with the business). */
@Entity({ name: 'business_blocks' })
export class BusinessBlockRow {
  @PrimaryColumn({ name: 'wa_id', type: 'text' })
  waId!: string;

  @PrimaryColumn({ name: 'phone_number_id', type: 'text' })
  phoneNumberId!: string;

  @Column({ name: 'blocked_at', type: 'timestamptz', default: () => 'now()' })
  blockedAt!: Date;
}
