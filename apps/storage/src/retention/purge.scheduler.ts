import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import type { Logger } from 'pino';
import { APP_CONFIG, APP_LOGGER } from '@relay/platform';
import type { StorageConfig } from '../config';
import { Purger } from './purger';

/** Purges at start (finishing whatever a crashed run left) and then every PURGE_INTERVAL_MS. */
@Injectable()
export class PurgeScheduler implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<unknown> = Promise.resolve();

  constructor(
    @Inject(Purger) private readonly purger: Purger,
    @Inject(APP_CONFIG) private readonly config: StorageConfig,
    @Inject(APP_LOGGER) private readonly log: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.config.PURGE_INTERVAL_MS);
    this.timer.unref();
  }

  /** Before the databases close: a purge in progress finishes its batch (a kill -9 would lose only that). */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.current;
  }

  private tick(): void {
    this.current = this.purger.runOnce().catch((err: Error) => {
      this.log.error({ err: err.message }, 'purge failed; the next run resumes it');
    });
  }
}
