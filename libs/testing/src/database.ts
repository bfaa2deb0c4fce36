import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { adminDatabaseUrl } from './global-setup.js';

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** Creates a fresh, uniquely named database so test files can run in parallel. */
export async function createTestDatabase(prefix = 'keyway_test'): Promise<TestDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminDatabaseUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminDatabaseUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: adminDatabaseUrl() });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * The environment of an auth service under test: its own database and data dir, a fixed CA
 * key, and listeners on free ports. Merge test-specific settings over it.
 */
export function authTestEnv(o: { databaseUrl: string; dataDir: string }): Record<string, string> {
  return {
    KEYWAY_DATABASE_URL: o.databaseUrl,
    KEYWAY_CA_KEY: 'test-ca-key-0123456789abcdef',
    KEYWAY_DATA_DIR: o.dataDir,
    KEYWAY_AUTH_LISTEN_ADDR: '127.0.0.1:0',
  };
}
