import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import type { Logger } from 'pino';
import { APP_CONFIG, APP_LOGGER, CLOCK, NatsBus, type Clock } from '@relay/platform';
import type { AckFrame, ReceiptFrame } from '@relay/protocol';
import type { GatewayConfig } from '../config';
import { toGatewayError } from '../keys/business-bundle.service';
import { ConnectionRegistry } from '../ws/connection-registry';
import type { DeviceConnection } from '../ws/device-connection';
import { DeliveryPump } from './delivery-pump';
import { AckBatcher } from './ack-batcher';

/** Outbound delivery to connected devices, and the statuses their acks and receipts produce. */
@Injectable()
export class DeliveryService implements OnModuleInit {
  private readonly pumps = new WeakMap<DeviceConnection, DeliveryPump>();
  private readonly ackBatchers = new WeakMap<DeviceConnection, AckBatcher>();

  constructor(
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(ConnectionRegistry) private readonly registry: ConnectionRegistry,
    @Inject(APP_CONFIG) private readonly config: GatewayConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(APP_LOGGER) private readonly log: Logger,
  ) {}

  onModuleInit(): void {
    this.registry.onPending((conn) => this.pumps.get(conn)?.drain());
  }

  /** A device connected: push its backlog. */
  start(conn: DeviceConnection): void {
    const pump = new DeliveryPump(conn, this.bus, this.config.WS_DELIVERY_WINDOW, this.log);
    this.pumps.set(conn, pump);
    pump.drain();
  }

  /**
   * The device has the messages: 'delivered' (or 'failed' when it could not decrypt them) is made
   * durable first, then they leave the queue, so a crash in between only repeats an idempotent status.
   * Acks arriving while one is in flight are carried together (one storage.ack per burst).
   */
  ack(conn: DeviceConnection, frame: AckFrame): Promise<void> {
    let batcher = this.ackBatchers.get(conn);
    if (!batcher) {
      batcher = new AckBatcher((frames) => this.flushAcks(conn, frames));
      this.ackBatchers.set(conn, batcher);
    }
    return batcher.add(frame);
  }

  private async flushAcks(conn: DeviceConnection, frames: AckFrame[]): Promise<void> {
    const pump = this.pumps.get(conn);
    const { waId, deviceId } = conn.device;
    const now = this.clock.now().toISOString();
    const wamids = [...new Set(frames.flatMap((f) => f.wamids))];
    try {
      await Promise.all(
        frames.flatMap((frame) =>
          frame.wamids.map((wamid) => {
            const phoneNumberId = pump?.inflight.get(wamid);
            return phoneNumberId
              ? this.publishStatus(waId, deviceId, wamid, phoneNumberId, frame.outcome, now)
              : undefined;
          }),
        ),
      );
      await this.bus.request('storage.ack', { to: { wa_id: waId, device_id: deviceId }, wamids });
    } catch (err) {
      throw toGatewayError(err);
    }
    pump?.acked(wamids);
  }

  private publishStatus(
    waId: string,
    deviceId: number,
    wamid: string,
    phoneNumberId: string,
    outcome: AckFrame['outcome'],
    timestamp: string,
  ) {
    const failed = outcome === 'undecryptable';
    return this.bus.publish(
      'status.update',
      { phone_number_id: phoneNumberId },
      {
        wamid,
        phone_number_id: phoneNumberId,
        recipient_id: waId,
        device_id: deviceId,
        status: failed ? 'failed' : 'delivered',
        timestamp,
        ...(failed
          ? {
              errors: [
                { code: 131026, title: 'Message undeliverable', details: 'the device could not decrypt it' },
              ],
            }
          : {}),
      },
      { msgId: `${failed ? 'failed' : 'delivered'}.${wamid}.${waId}.${deviceId}` },
    );
  }

  /** Read receipts: the recipient is always the authenticated user, so nobody reads for another. */
  async read(conn: DeviceConnection, frame: ReceiptFrame): Promise<void> {
    const { waId, deviceId } = conn.device;
    try {
      await Promise.all(
        frame.wamids.map((wamid) =>
          this.bus.publish(
            'status.update',
            { phone_number_id: frame.phone_number_id },
            {
              wamid,
              phone_number_id: frame.phone_number_id,
              recipient_id: waId,
              device_id: deviceId,
              status: 'read',
              timestamp: this.clock.now().toISOString(),
            },
            { msgId: `read.${wamid}.${waId}.${deviceId}` },
          ),
        ),
      );
    } catch (err) {
      throw toGatewayError(err);
    }
  }
}
