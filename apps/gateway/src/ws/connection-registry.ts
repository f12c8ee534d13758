import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { NatsBus } from '@relay/platform';
import { DEVICE_CLOSE_CODES } from '@relay/protocol';
import { DeviceConnection, deviceKey } from './device-connection';

/**
 * The devices connected to this replica. A device has one connection across all replicas: a new
 * one announces itself (device.control) and any older one, here or on another replica, closes 4409.
 */
@Injectable()
export class ConnectionRegistry implements OnModuleInit {
  private readonly byDevice = new Map<string, DeviceConnection>();
  private readonly pendingListeners: ((conn: DeviceConnection) => void)[] = [];
  /**
   * Connections announced from here whose announcement has not come back yet. add() already replaced
   * any older local connection; our own announcement arriving after a newer connection of the same
   * device was added must not close that newer one.
   */
  private readonly ownAnnouncements = new Set<string>();

  constructor(@Inject(NatsBus) private readonly bus: NatsBus) {}

  onModuleInit(): void {
    this.bus.onNotify('device.control', (n) => {
      if (n.action === 'connected' && this.ownAnnouncements.delete(n.connection_id)) return;
      const conn = this.get(n.to.wa_id, n.to.device_id);
      if (!conn) return;
      if (n.action === 'removed') conn.close(DEVICE_CLOSE_CODES.DEVICE_REMOVED, 'device removed');
      else if (n.connection_id !== conn.id) {
        conn.close(DEVICE_CLOSE_CODES.CONNECTED_ELSEWHERE, 'connected elsewhere');
      }
    });
    this.bus.onNotify('device.pending', (n) => {
      const conn = this.get(n.to.wa_id, n.to.device_id);
      if (conn) for (const l of this.pendingListeners) l(conn);
    });
    this.bus.onNotify('device.failure', (f) => {
      this.get(f.from.wa_id, f.from.device_id)?.send({
        type: 'failure',
        envelope_id: f.envelope_id,
        phone_number_id: f.phone_number_id,
        reason: f.reason,
        detail: f.detail,
      });
    });
  }

  /** Called when storage says a held device has new messages. */
  onPending(listener: (conn: DeviceConnection) => void): void {
    this.pendingListeners.push(listener);
  }

  add(conn: DeviceConnection): void {
    const previous = this.byDevice.get(conn.key);
    if (previous) previous.close(DEVICE_CLOSE_CODES.CONNECTED_ELSEWHERE, 'connected elsewhere');
    this.byDevice.set(conn.key, conn);
    conn.onClose(() => {
      if (this.byDevice.get(conn.key) === conn) this.byDevice.delete(conn.key);
    });
    const to = { wa_id: conn.device.waId, device_id: conn.device.deviceId };
    // Bounded if announcements stop coming back (NATS down): forgetting one only restores the old race.
    if (this.ownAnnouncements.size >= 100_000) this.ownAnnouncements.clear();
    this.ownAnnouncements.add(conn.id);
    this.bus.notify('device.control', to, { to, action: 'connected', connection_id: conn.id });
  }

  get(waId: string, deviceId: number): DeviceConnection | undefined {
    return this.byDevice.get(deviceKey(waId, deviceId));
  }

  all(): IterableIterator<DeviceConnection> {
    return this.byDevice.values();
  }

  get size(): number {
    return this.byDevice.size;
  }
}
