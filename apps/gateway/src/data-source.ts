import { createServiceDataSource } from '@relay/platform';
import { ProcessedEvent } from './processed-event.entity';
import { DeviceRow } from './accounts/device.entity';
import { VerificationSessionRow } from './accounts/verification-session.entity';
import { DeviceKyberPrekeyRow, DevicePrekeyRow } from './keys/prekey.entity';
import { BusinessBlockRow } from './abuse/block.entity';
import { Init1764064000000 } from './migrations/1764064000000-init';
import { Devices1764100000000 } from './migrations/1764100000000-devices';
import { ConnectionEpoch1764500000000 } from './migrations/1764500000000-connection-epoch';

export const GATEWAY_SCHEMA = 'gateway';

/** The service's DataSource, shared by Nest and the migration CLI. */
export function gatewayDataSource(url = process.env.DATABASE_URL ?? '', poolSize = 10) {
  return createServiceDataSource({
    url,
    schema: GATEWAY_SCHEMA,
    entities: [
      ProcessedEvent,
      DeviceRow,
      VerificationSessionRow,
      DevicePrekeyRow,
      DeviceKyberPrekeyRow,
      BusinessBlockRow,
    ],
    migrations: [Init1764064000000, Devices1764100000000, ConnectionEpoch1764500000000],
    poolSize,
    applicationName: 'gateway',
  });
}

export default gatewayDataSource();
