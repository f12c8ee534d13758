/** Typed failures of the storage domain. */
export class StorageError extends Error {
  override readonly name: string = 'StorageError';
}

/**
 * A number is pinned to a region whose database is not configured. Its messages are retried (never
 * written elsewhere): Local Storage must not leak data into another region while an operator fixes config.
 */
export class RegionNotConfiguredError extends StorageError {
  override readonly name = 'RegionNotConfiguredError';
  constructor(readonly region: string) {
    super(`Local Storage region ${region} has no database configured (STORAGE_REGION_DATABASE_URLS)`);
  }
}
