import { untilReachable } from '@keyway/client';
import type { Logger } from '@keyway/log';
import { Store, connectionFailureReason, describeStore, type StoreLocation } from '@keyway/store';

/**
 * Opens the store, waiting for it as long as it takes when it is not reachable yet (a
 * Postgres that starts after Keyway, as in docker compose or a cluster), and saying so at
 * every attempt. Any other failure (a wrong password, a failed migration) ends the start.
 */
export function openStoreWhenReachable(location: StoreLocation, logger: Logger, o: { signal?: AbortSignal } = {}): Promise<Store> {
  return untilReachable(() => Store.open({ location, logger }), { what: describeStore(location), logger, reasonOf: connectionFailureReason, ...o });
}
