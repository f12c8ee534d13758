import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * A registered device of a user. Only public keys live here (the private ones never leave the device);
 * the credential is stored as SHA-256 of a 32-byte random secret.
 */
@Entity({ name: 'devices' })
export class DeviceRow {
  @PrimaryColumn({ name: 'wa_id', type: 'text' })
  waId!: string;

  @PrimaryColumn({ name: 'device_id', type: 'smallint' })
  deviceId!: number;

  @Column({ type: 'text', nullable: true })
  name!: string | null;

  @Column({ name: 'registration_id', type: 'integer' })
  registrationId!: number;

  @Column({ name: 'secret_hash', type: 'bytea' })
  secretHash!: Buffer;

  @Column({ name: 'identity_key', type: 'bytea' })
  identityKey!: Buffer;

  @Column({ name: 'signed_prekey_id', type: 'integer' })
  signedPrekeyId!: number;

  @Column({ name: 'signed_prekey', type: 'bytea' })
  signedPrekey!: Buffer;

  @Column({ name: 'signed_prekey_signature', type: 'bytea' })
  signedPrekeySignature!: Buffer;

  @Column({ name: 'kyber_last_resort_id', type: 'integer' })
  kyberLastResortId!: number;

  @Column({ name: 'kyber_last_resort_key', type: 'bytea' })
  kyberLastResortKey!: Buffer;

  @Column({ name: 'kyber_last_resort_signature', type: 'bytea' })
  kyberLastResortSignature!: Buffer;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  @Column({ name: 'last_seen_at', type: 'timestamptz', nullable: true })
  lastSeenAt!: Date | null;

  /** Drawn at every WebSocket connect (pg returns bigint as a string). */
  @Column({ name: 'connection_epoch', type: 'bigint', default: 0 })
  connectionEpoch!: string;
}
