import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

/**
 * Migrations live in code, in order, so they ship inside the package with nothing to locate
 * on disk at run time. Never edit a migration that has shipped: add the next one.
 */
const migrations: Record<string, Migration> = {
  '0001_identity_store': {
    async up(db: Kysely<unknown>) {
      // Every resource table keeps the full resource document plus a revision that is bumped on
      // each write, so concurrent updates conflict instead of overwriting silently.
      const resourceTable = (name: string) =>
        db.schema
          .createTable(name)
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('resource', 'jsonb', (c) => c.notNull())
          .addColumn('revision', 'bigint', (c) => c.notNull().defaultTo(1))
          .addColumn('expires', 'timestamptz')
          .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
          .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`));

      await resourceTable('roles').execute();
      await resourceTable('tokens').execute();
      await resourceTable('kube_clusters').execute();
      await resourceTable('locks').execute();
      await resourceTable('users')
        .addColumn('password_hash', 'text')
        .addColumn('totp_secret', 'text')
        .addColumn('totp_last_step', 'bigint')
        .addColumn('failed_logins', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('locked_until', 'timestamptz')
        .execute();

      await db.schema
        .createTable('connectors')
        .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('github', 'oidc', 'saml')`))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('resource', 'jsonb', (c) => c.notNull())
        .addColumn('revision', 'bigint', (c) => c.notNull().defaultTo(1))
        .addColumn('expires', 'timestamptz')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addPrimaryKeyConstraint('connectors_pkey', ['kind', 'name'])
        .execute();

      // One-time tokens for signup and reset; only a hash of the token is stored.
      await db.schema
        .createTable('user_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('username', 'text', (c) => c.notNull().references('users.name').onDelete('cascade'))
        .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('signup', 'reset')`))
        .addColumn('totp_secret', 'text')
        .addColumn('expires', 'timestamptz', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();

      await db.schema
        .createTable('cert_authorities')
        .addColumn('type', 'text', (c) => c.primaryKey().check(sql`type in ('user', 'host')`))
        .addColumn('cluster_name', 'text', (c) => c.notNull())
        .addColumn('cert_pem', 'text', (c) => c.notNull())
        .addColumn('encrypted_key', 'text', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();

      await db.schema
        .createTable('audit_events')
        .addColumn('id', 'bigserial', (c) => c.primaryKey())
        .addColumn('uid', 'text', (c) => c.notNull().unique())
        .addColumn('time', 'timestamptz', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('code', 'text', (c) => c.notNull())
        .addColumn('cluster_name', 'text')
        .addColumn('username', 'text')
        .addColumn('data', 'jsonb', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_events_time').on('audit_events').column('time').execute();
      await db.schema.createIndex('audit_events_event_time').on('audit_events').columns(['event', 'time']).execute();

      await db.schema
        .createTable('cluster_state')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'jsonb', (c) => c.notNull())
        .execute();
    },
  },
  '0002_presence': {
    async up(db: Kysely<unknown>) {
      // Heartbeats of proxies and kube agents: short-lived rows that expire unless renewed.
      await db.schema
        .createTable('presence')
        .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('proxy', 'kube_server')`))
        .addColumn('host_id', 'text', (c) => c.notNull())
        .addColumn('data', 'jsonb', (c) => c.notNull())
        .addColumn('expires', 'timestamptz', (c) => c.notNull())
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addPrimaryKeyConstraint('presence_pkey', ['kind', 'host_id'])
        .execute();
    },
  },
  '0003_audit_chain': {
    async up(db: Kysely<unknown>) {
      // Tamper evidence: each event stores the hash of its predecessor and its own.
      await db.schema.alterTable('audit_events').addColumn('prev_hash', 'text').execute();
      await db.schema.alterTable('audit_events').addColumn('hash', 'text').execute();
      await db.schema.alterTable('audit_events').addColumn('kubernetes_cluster', 'text').execute();
      await db.schema.alterTable('audit_events').addColumn('namespace', 'text').execute();
      await db.schema.createIndex('audit_events_user_time').on('audit_events').columns(['username', 'time']).execute();
      await db.schema.createIndex('audit_events_cluster_time').on('audit_events').columns(['kubernetes_cluster', 'time']).execute();
    },
  },
  '0004_session_recordings': {
    async up(db: Kysely<unknown>) {
      // Exec/attach recordings: one row per session, its events in chunks numbered by the proxy.
      await db.schema
        .createTable('session_recordings')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('cluster', 'text', (c) => c.notNull())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('pod', 'text', (c) => c.notNull())
        .addColumn('container', 'text', (c) => c.notNull())
        .addColumn('command', 'jsonb', (c) => c.notNull())
        .addColumn('started', 'timestamptz', (c) => c.notNull())
        .addColumn('ended', 'timestamptz')
        .execute();
      await db.schema.createIndex('session_recordings_started').on('session_recordings').column('started').execute();
      await db.schema
        .createTable('session_chunks')
        .addColumn('session_id', 'text', (c) => c.notNull().references('session_recordings.id').onDelete('cascade'))
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('session_chunks_pkey', ['session_id', 'seq'])
        .execute();
    },
  },
  '0005_audit_exact_text': {
    async up(db: Kysely<unknown>) {
      // json keeps the exact text that was hashed, so the chain needs no canonical form
      // (jsonb reorders keys) and the writer no second serialization.
      await sql`ALTER TABLE audit_events ALTER COLUMN data TYPE json USING data::json`.execute(db);
      // Search filters by namespace too, newest first.
      await db.schema.createIndex('audit_events_namespace_id').on('audit_events').columns(['namespace', 'id']).execute();
    },
  },
  '0006_audit_keyed_chain': {
    async up(db: Kysely<unknown>) {
      // A contiguous number per event (bigserial ids have gaps), inside the keyed link, so a
      // missing event is named; and the id of the key that made each keyed link.
      await db.schema.alterTable('audit_events').addColumn('seq', 'bigint').execute();
      await db.schema.alterTable('audit_events').addColumn('key_id', 'text').execute();
      await sql`UPDATE audit_events AS a SET seq = r.n FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM audit_events) AS r WHERE a.id = r.id`.execute(db);
      // Audit keys, encrypted like the CA keys; each row also says, under its own MAC, from
      // which event on it links the chain, so that point cannot be moved or removed unnoticed.
      await db.schema
        .createTable('audit_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('encrypted_key', 'text', (c) => c.notNull())
        .addColumn('start_seq', 'bigint', (c) => c.notNull())
        .addColumn('start_hash', 'text', (c) => c.notNull())
        .addColumn('mac', 'text', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();
      // Signed heads of the chain: the stored chain may not end before the latest one.
      await db.schema
        .createTable('audit_checkpoints')
        .addColumn('id', 'bigserial', (c) => c.primaryKey())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('time', 'text', (c) => c.notNull())
        .addColumn('mac', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_checkpoints_seq').on('audit_checkpoints').column('seq').execute();
    },
  },
  '0007_sso': {
    async up(db: Kysely<unknown>) {
      // SSO login requests between the browser's trip to the provider and its callback: each is
      // consumed by one callback (deleted as it is read), across every auth replica.
      await db.schema
        .createTable('sso_requests')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('data', 'jsonb', (c) => c.notNull())
        .addColumn('expires', 'timestamptz', (c) => c.notNull())
        .execute();
      // Ids of assertions (SAML) already used, until they would have expired anyway.
      await db.schema
        .createTable('sso_seen')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('expires', 'timestamptz', (c) => c.notNull())
        .execute();
    },
  },
  '0008_sso_sessions': {
    async up(db: Kysely<unknown>) {
      // One row per SSO user: the provider's renewal secret (OIDC refresh token, GitHub access
      // token), sealed, so a certificate renewal can ask the provider again.
      await db.schema
        .createTable('sso_sessions')
        .addColumn('username', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('connector', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('sealed', 'text', (c) => c.notNull())
        .addColumn('checked_at', 'timestamptz', (c) => c.notNull())
        .addColumn('expires', 'timestamptz', (c) => c.notNull())
        .execute();
    },
  },
};

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};
