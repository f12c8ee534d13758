import { Injectable } from '@nestjs/common';

/** Wakes the dispatcher as soon as new events are committed, instead of waiting for its next poll. */
@Injectable()
export class DispatchSignal {
  private waiter?: () => void;
  private pending = false;

  wake(): void {
    this.pending = true;
    this.waiter?.();
  }

  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiter = undefined;
        this.pending = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiter = done;
    });
  }
}
