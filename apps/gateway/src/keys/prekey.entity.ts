import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A one-time EC prekey of a device; a bundle request deletes the row it hands out. */
@Entity({ name: 'device_prekeys' })
export class DevicePrekeyRow {
  @PrimaryColumn({ name: 'wa_id', type: 'text' })
  waId!: string;

  @PrimaryColumn({ name: 'device_id', type: 'smallint' })
  deviceId!: number;

  @PrimaryColumn({ name: 'key_id', type: 'integer' })
  keyId!: number;

  @Column({ name: 'public_key', type: 'bytea' })
  publicKey!: Buffer;
}

/** A one-time Kyber prekey of a device (signed by its identity key). */
@Entity({ name: 'device_kyber_prekeys' })
export class DeviceKyberPrekeyRow {
  @PrimaryColumn({ name: 'wa_id', type: 'text' })
  waId!: string;

  @PrimaryColumn({ name: 'device_id', type: 'smallint' })
  deviceId!: number;

  @PrimaryColumn({ name: 'key_id', type: 'integer' })
  keyId!: number;

  @Column({ name: 'public_key', type: 'bytea' })
  publicKey!: Buffer;

  @Column({ type: 'bytea' })
  signature!: Buffer;
}
