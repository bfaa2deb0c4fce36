import pg from 'pg';

/**
 * Runs once before the suite: fails fast, with the fix, when the Postgres the integration
 * tests need is not there, instead of letting every test time out on its own.
 */
export default async function globalSetup(): Promise<void> {
  const url = adminDatabaseUrl();
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    throw new Error(
      `tests need Postgres at ${url} (set KEYWAY_TEST_DATABASE_URL to change it): ${(err as Error).message}. ` +
        'Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function adminDatabaseUrl(): string {
  return process.env['KEYWAY_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}
