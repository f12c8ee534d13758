import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import type { Logger } from 'pino';
import { APP_CONFIG, APP_LOGGER } from '@relay/platform';
import type { StorageConfig } from '../config';
import { StorageDatabases } from './storage-databases';

/**
 * Master-key rotation without downtime: started with a new MASTER_KEY and the old one in
 * MASTER_KEY_PREVIOUS, the service rewraps every data key of every database in the background while it
 * keeps serving (old wrappings still open). When the log reports 0 left, the old key can be removed.
 */
@Injectable()
export class KeyRotation implements OnApplicationBootstrap, BeforeApplicationShutdown {
  done: Promise<void> = Promise.resolve();

  constructor(
    @Inject(StorageDatabases) private readonly dbs: StorageDatabases,
    @Inject(APP_CONFIG) private readonly config: StorageConfig,
    @Inject(APP_LOGGER) private readonly log: Logger,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.MASTER_KEY_PREVIOUS.trim()) return;
    this.done = this.rotateAll().catch((err: Error) => {
      this.log.error({ err: err.message }, 'data key rewrap failed; it resumes at the next start');
    });
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.done;
  }

  private async rotateAll(): Promise<void> {
    for (const db of this.dbs.all()) {
      const { rewrapped } = await db.keys.rotate();
      this.log.info({ db: db.label, rewrapped }, 'data keys rewrapped with the current master key');
    }
  }
}
