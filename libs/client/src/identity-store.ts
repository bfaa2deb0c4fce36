import { existsSync } from 'node:fs';
import { readIdentityFile, writeIdentityFile, type IdentityFile } from './identity-file.js';

/**
 * Where a host (proxy, agent) keeps its credentials between restarts: a file in its data
 * directory, or, for an agent in a Kubernetes pod whose disk does not outlive it, a Secret.
 */
export interface IdentityStore {
  /** Where, for log lines and errors. */
  readonly location: string;
  /** The stored credentials, or undefined when there are none yet. */
  load(): Promise<IdentityFile | undefined>;
  save(identity: IdentityFile): Promise<void>;
}

/** Credentials in a file readable by its owner only, written atomically. */
export function fileIdentityStore(path: string): IdentityStore {
  return {
    location: path,
    load: () => Promise.resolve(existsSync(path) ? readIdentityFile(path) : undefined),
    save: (identity) => Promise.resolve(writeIdentityFile(path, identity)),
  };
}
