import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@keyway/log';
import { Store, connectionFailureReason, describeStore, type StoreLocation } from '@keyway/store';

/** First retry after this long, doubling up to MAX_DELAY_MS. */
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

/**
 * Opens the store, waiting for it as long as it takes when it is not reachable yet (a
 * Postgres that starts after Keyway, as in docker compose or a cluster), and saying so at
 * every attempt. Any other failure (a wrong password, a failed migration) ends the start.
 */
export async function openStoreWhenReachable(location: StoreLocation, logger: Logger, o: { signal?: AbortSignal } = {}): Promise<Store> {
  const store = describeStore(location);
  let delay = FIRST_DELAY_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      const opened = await Store.open({ location, logger });
      if (attempt > 1) logger.info({ store, attempts: attempt }, `${store} is reachable`);
      return opened;
    } catch (err) {
      const reason = connectionFailureReason(err);
      if (!reason) throw err;
      // Jitter keeps several replicas that started together from retrying in step.
      const wait = Math.round(delay * (0.75 + Math.random() * 0.5));
      logger.warn({ attempt, retryInMs: wait }, `waiting for ${store} (${reason}); retrying in ${(wait / 1000).toFixed(1)}s`);
      await sleep(wait, undefined, o.signal ? { signal: o.signal } : {});
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }
}
