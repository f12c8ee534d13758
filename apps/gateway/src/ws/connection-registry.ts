import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { NatsBus } from '@relay/platform';
import { DEVICE_CLOSE_CODES } from '@relay/protocol';
import { DeviceConnection, deviceKey } from './device-connection';

/**
 * The devices connected to this replica. A device has one connection across all replicas: a new one
 * announces itself (device.control) and any older one, here or on another replica, closes 4409. "Older"
 * is by the connection's epoch, drawn from the device's row at connect, not by arrival: when a device
 * reconnects to replica B while replica A's announcement of the previous connection is still on its
 * way, B keeps the newer connection instead of closing it on that late announcement.
 */
@Injectable()
export class ConnectionRegistry implements OnModuleInit {
  private readonly byDevice = new Map<string, DeviceConnection>();
  private readonly pendingListeners: ((conn: DeviceConnection) => void)[] = [];

  constructor(@Inject(NatsBus) private readonly bus: NatsBus) {}

  onModuleInit(): void {
    this.bus.onNotify('device.control', (n) => {
      const conn = this.get(n.to.wa_id, n.to.device_id);
      if (!conn) return;
      if (n.action === 'removed') conn.close(DEVICE_CLOSE_CODES.DEVICE_REMOVED, 'device removed');
      else if (supersedes(n, conn)) conn.close(DEVICE_CLOSE_CODES.CONNECTED_ELSEWHERE, 'connected elsewhere');
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

  /**
   * Registers a new connection and announces it; false (and the connection closed) when a newer one of
   * the same device is already here (two connects whose epochs came back out of order).
   */
  add(conn: DeviceConnection): boolean {
    const previous = this.byDevice.get(conn.key);
    if (previous && previous.epoch > conn.epoch) {
      conn.close(DEVICE_CLOSE_CODES.CONNECTED_ELSEWHERE, 'connected elsewhere');
      return false;
    }
    if (previous) previous.close(DEVICE_CLOSE_CODES.CONNECTED_ELSEWHERE, 'connected elsewhere');
    this.byDevice.set(conn.key, conn);
    conn.onClose(() => {
      if (this.byDevice.get(conn.key) === conn) this.byDevice.delete(conn.key);
    });
    const to = { wa_id: conn.device.waId, device_id: conn.device.deviceId };
    this.bus.notify('device.control', to, {
      to,
      action: 'connected',
      connection_id: conn.id,
      epoch: conn.epoch,
    });
    return true;
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

/**
 * Whether an announced connection replaces the local one: a higher epoch does; an announcement without
 * one (a gateway from before epochs) replaces any other connection, as it always did.
 */
function supersedes(
  n: { connection_id: string; epoch?: number },
  local: { id: string; epoch: number },
): boolean {
  if (n.connection_id === local.id) return false;
  return n.epoch === undefined || n.epoch > local.epoch;
}
