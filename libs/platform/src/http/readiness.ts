/** Named dependency checks behind /ready; each module registers what it needs (NATS, database...). */
export class ReadinessRegistry {
  private readonly checks = new Map<string, () => Promise<void>>();

  register(name: string, check: () => Promise<void>): void {
    this.checks.set(name, check);
  }

  async run(timeoutMs = 2000): Promise<{ ok: boolean; checks: Record<string, string> }> {
    const results: Record<string, string> = {};
    let ok = true;
    await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        try {
          await Promise.race([
            check(),
            new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), timeoutMs).unref()),
          ]);
          results[name] = 'ok';
        } catch (err) {
          ok = false;
          results[name] = (err as Error).message || 'failed';
        }
      }),
    );
    return { ok, checks: results };
  }
}
