import { Kysely, Migrator, PostgresDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { describeStore, mappedPool } from './connection-errors.js';
import { AlreadyExistsError, BadParameterError, CompareFailedError, NotFoundError } from '@keyway/errors';
import type { Logger } from '@keyway/log';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js';
import { migrationProvider } from './migrations.js';
import type { Database } from './schema.js';

export type StoreLocation = { type: 'embedded'; dataDir: string } | { type: 'postgres'; connString: string };

export interface StoreOptions {
  location: StoreLocation;
  logger?: Logger;
  /** Pool size; the embedded server multiplexes onto one PGlite, so keep it small there. */
  maxConnections?: number;
}

export type Db = Kysely<Database> | Transaction<Database>;

/** The resource kinds the store keeps, and where. */
export const STORED_KINDS = ['user', 'role', 'token', 'github', 'oidc', 'saml', 'kube_cluster', 'lock'] as const;
export type StoredKind = (typeof STORED_KINDS)[number];

export interface StoredResource {
  kind: StoredKind;
  name: string;
  /** The resource document, with metadata.revision set to the stored revision. */
  resource: Record<string, unknown>;
  revision: string;
  expires: Date | null;
}

export type PresenceKind = 'proxy' | 'kube_server';

export interface PresenceEntry {
  kind: PresenceKind;
  hostId: string;
  data: Record<string, unknown>;
  expires: Date;
}

export interface PutOptions {
  /** Create only: an existing resource is an AlreadyExists error. */
  createOnly?: boolean;
  /** Update only if the stored revision is still this one. */
  expectedRevision?: string;
  expires?: Date | null;
}

const TABLES = {
  user: 'users',
  role: 'roles',
  token: 'tokens',
  kube_cluster: 'kube_clusters',
  lock: 'locks',
} as const;

const CONNECTOR_KINDS = new Set<StoredKind>(['github', 'oidc', 'saml']);

export class Store {
  readonly db: Kysely<Database>;
  private readonly embedded: EmbeddedPostgres | undefined;
  private readonly pool: pg.Pool;

  private constructor(db: Kysely<Database>, pool: pg.Pool, embedded: EmbeddedPostgres | undefined) {
    this.db = db;
    this.pool = pool;
    this.embedded = embedded;
  }

  /** Whether the server speaks COPY: Postgres does; the embedded PGlite server does not. */
  get supportsCopy(): boolean {
    return this.embedded === undefined;
  }

  /** A pooled connection of its own, for what Kysely does not do (COPY); released after fn. */
  async withConnection<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let failed = false;
    try {
      return await fn(client);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      // A connection that failed mid-protocol (COPY) is not fit for the next caller.
      client.release(failed);
    }
  }

  /** Opens the store and brings its schema up to date. */
  static async open(options: StoreOptions): Promise<Store> {
    let embedded: EmbeddedPostgres | undefined;
    let connection: pg.PoolConfig;
    if (options.location.type === 'embedded') {
      embedded = await startEmbeddedPostgres(options.location.dataDir);
      connection = embedded.connection;
    } else {
      connection = { connectionString: options.location.connString };
    }
    const pool = new pg.Pool({
      ...connection,
      // The embedded server is a single session: one connection, queries queue in the pool.
      max: embedded ? 1 : (options.maxConnections ?? 10),
      connectionTimeoutMillis: embedded ? 60_000 : 10_000,
    });
    pool.on('error', (err) => options.logger?.warn({ err }, 'idle database connection failed'));
    pool.on('connect', (client) => client.on('error', (err) => options.logger?.warn({ err }, 'database connection failed')));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: mappedPool(pool, describeStore(options.location)) }) });
    const store = new Store(db, pool, embedded);
    try {
      await store.migrate(options.logger);
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  private async migrate(logger?: Logger): Promise<void> {
    const migrator = new Migrator({
      db: this.db,
      provider: migrationProvider,
      migrationTableName: 'keyway_migrations',
      migrationLockTableName: 'keyway_migrations_lock',
    });
    const { error, results } = await migrator.migrateToLatest();
    for (const r of results ?? []) {
      if (r.status === 'Success') logger?.info({ migration: r.migrationName }, 'applied migration');
      if (r.status === 'Error') logger?.error({ migration: r.migrationName }, 'migration failed');
    }
    if (error) throw error instanceof Error ? error : new Error(String(error));
  }

  async close(): Promise<void> {
    await this.db.destroy();
    await this.embedded?.close();
  }

  /** Runs fn in one transaction: every multi-row write goes through here. */
  transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  async getResource(kind: StoredKind, name: string, db: Db = this.db): Promise<StoredResource> {
    const found = await this.findResource(kind, name, db);
    if (!found) throw new NotFoundError(`${kind} "${name}" not found`, { kind, name });
    return found;
  }

  async findResource(kind: StoredKind, name: string, db: Db = this.db): Promise<StoredResource | undefined> {
    const row = CONNECTOR_KINDS.has(kind)
      ? await db
          .selectFrom('connectors')
          .select(['name', 'resource', 'revision', 'expires'])
          .where('kind', '=', kind as 'github')
          .where('name', '=', name)
          .executeTakeFirst()
      : await db
          .selectFrom(tableOf(kind))
          .select(['name', 'resource', 'revision', 'expires'])
          .where('name', '=', name)
          .executeTakeFirst();
    if (!row || isExpired(row.expires)) return undefined;
    return toStored(kind, row);
  }

  async listResources(kind: StoredKind, db: Db = this.db): Promise<StoredResource[]> {
    const rows = CONNECTOR_KINDS.has(kind)
      ? await db
          .selectFrom('connectors')
          .select(['name', 'resource', 'revision', 'expires'])
          .where('kind', '=', kind as 'github')
          .orderBy('name')
          .execute()
      : await db.selectFrom(tableOf(kind)).select(['name', 'resource', 'revision', 'expires']).orderBy('name').execute();
    return rows.filter((r) => !isExpired(r.expires)).map((r) => toStored(kind, r));
  }

  /**
   * One page of a kind's resources, from `startKey` on (inclusive), in byte order of their
   * names (collation "C", the order JavaScript compares strings in for the names resources may
   * have). `nextKey` is the first name after the page. Expired rows are left out, so a page
   * may hold fewer than `limit`.
   */
  async listResourcesPage(kind: StoredKind, page: { startKey: string; limit: number }, db: Db = this.db): Promise<{ resources: StoredResource[]; nextKey?: string }> {
    const byName = sql`name collate "C"`;
    const rows = CONNECTOR_KINDS.has(kind)
      ? await db
          .selectFrom('connectors')
          .select(['name', 'resource', 'revision', 'expires'])
          .where('kind', '=', kind as 'github')
          .where(sql<boolean>`${byName} >= ${page.startKey}`)
          .orderBy(byName)
          .limit(page.limit + 1)
          .execute()
      : await db
          .selectFrom(tableOf(kind))
          .select(['name', 'resource', 'revision', 'expires'])
          .where(sql<boolean>`${byName} >= ${page.startKey}`)
          .orderBy(byName)
          .limit(page.limit + 1)
          .execute();
    const next = rows.length > page.limit ? rows.pop() : undefined;
    const resources = rows.filter((r) => !isExpired(r.expires)).map((r) => toStored(kind, r));
    return next ? { resources, nextKey: next.name } : { resources };
  }

  /**
   * Creates or replaces a resource. Must be called inside a transaction when it is one of
   * several writes. Returns the new revision and whether it was created.
   */
  async putResource(
    kind: StoredKind,
    name: string,
    resource: Record<string, unknown>,
    options: PutOptions = {},
    db: Db = this.db,
  ): Promise<{ revision: string; created: boolean }> {
    const doc = withoutRevision(resource);
    const json = JSON.stringify(doc);
    const expires = options.expires ?? null;
    const existing = await this.lockRow(kind, name, db);
    if (existing && isExpired(existing.expires)) {
      // An expired row is gone as far as anyone can see; replace it as a creation.
      await this.deleteRow(kind, name, db);
    } else if (existing) {
      if (options.createOnly) {
        throw new AlreadyExistsError(`${kind} "${name}" already exists`, { kind, name });
      }
      if (options.expectedRevision !== undefined && options.expectedRevision !== existing.revision) {
        throw new CompareFailedError(
          `${kind} "${name}" was changed concurrently (revision ${existing.revision}, expected ${options.expectedRevision}); fetch it again and retry`,
          { kind, name, revision: existing.revision, expected: options.expectedRevision },
        );
      }
      const updated = CONNECTOR_KINDS.has(kind)
        ? await db
            .updateTable('connectors')
            .set(() => ({ resource: json, expires, updated_at: new Date(), revision: sql<string>`revision + 1` }))
            .where('kind', '=', kind as 'github')
            .where('name', '=', name)
            .returning('revision')
            .executeTakeFirstOrThrow()
        : await db
            .updateTable(tableOf(kind))
            .set(() => ({ resource: json, expires, updated_at: new Date(), revision: sql<string>`revision + 1` }))
            .where('name', '=', name)
            .returning('revision')
            .executeTakeFirstOrThrow();
      return { revision: String(updated.revision), created: false };
    }
    if (options.expectedRevision !== undefined) {
      throw new CompareFailedError(`${kind} "${name}" no longer exists (expected revision ${options.expectedRevision})`, {
        kind,
        name,
        expected: options.expectedRevision,
      });
    }
    try {
      const inserted = CONNECTOR_KINDS.has(kind)
        ? await db
            .insertInto('connectors')
            .values({ kind: kind as 'github', name, resource: json, expires })
            .returning('revision')
            .executeTakeFirstOrThrow()
        : await db.insertInto(tableOf(kind)).values({ name, resource: json, expires }).returning('revision').executeTakeFirstOrThrow();
      return { revision: String(inserted.revision), created: true };
    } catch (err) {
      if ((err as { code?: string }).code === '23505') {
        throw new AlreadyExistsError(`${kind} "${name}" already exists`, { kind, name });
      }
      throw err;
    }
  }

  async deleteResource(kind: StoredKind, name: string, db: Db = this.db): Promise<void> {
    const deleted = await this.deleteRow(kind, name, db);
    if (!deleted) throw new NotFoundError(`${kind} "${name}" not found`, { kind, name });
  }

  /**
   * Records a heartbeat. Returns whether anything a watcher cares about changed (a new host,
   * or different data), so callers publish only real changes.
   */
  async putPresence(kind: PresenceKind, hostId: string, data: Record<string, unknown>, expires: Date): Promise<boolean> {
    const json = JSON.stringify(data);
    const before = await this.db
      .selectFrom('presence')
      .select(['data', 'expires'])
      .where('kind', '=', kind)
      .where('host_id', '=', hostId)
      .executeTakeFirst();
    await this.db
      .insertInto('presence')
      .values({ kind, host_id: hostId, data: json, expires })
      .onConflict((oc) => oc.columns(['kind', 'host_id']).doUpdateSet({ data: json, expires, updated_at: new Date() }))
      .execute();
    return !before || isExpired(before.expires) || JSON.stringify(before.data) !== JSON.stringify(JSON.parse(json));
  }

  async listPresence(kind: PresenceKind, now = new Date()): Promise<PresenceEntry[]> {
    const rows = await this.db
      .selectFrom('presence')
      .select(['host_id', 'data', 'expires'])
      .where('kind', '=', kind)
      .where('expires', '>', now)
      .orderBy('host_id')
      .execute();
    return rows.map((r) => ({ kind, hostId: r.host_id, data: r.data, expires: r.expires }));
  }

  /** Deletes expired heartbeats and returns them, so their going can be published. */
  async expirePresence(now = new Date()): Promise<PresenceEntry[]> {
    const rows = await this.db
      .deleteFrom('presence')
      .where('expires', '<=', now)
      .returning(['kind', 'host_id', 'data', 'expires'])
      .execute();
    return rows.map((r) => ({ kind: r.kind, hostId: r.host_id, data: r.data, expires: r.expires }));
  }

  /** Removes expired tokens, locks and user tokens; returns how many rows went. */
  async deleteExpired(now = new Date()): Promise<number> {
    let n = 0;
    for (const table of ['tokens', 'locks'] as const) {
      const r = await this.db.deleteFrom(table).where('expires', '<=', now).executeTakeFirst();
      n += Number(r.numDeletedRows);
    }
    const r = await this.db.deleteFrom('user_tokens').where('expires', '<=', now).executeTakeFirst();
    return n + Number(r.numDeletedRows);
  }

  private async lockRow(kind: StoredKind, name: string, db: Db) {
    return CONNECTOR_KINDS.has(kind)
      ? db
          .selectFrom('connectors')
          .select(['revision', 'expires'])
          .where('kind', '=', kind as 'github')
          .where('name', '=', name)
          .forUpdate()
          .executeTakeFirst()
      : db.selectFrom(tableOf(kind)).select(['revision', 'expires']).where('name', '=', name).forUpdate().executeTakeFirst();
  }

  private async deleteRow(kind: StoredKind, name: string, db: Db): Promise<boolean> {
    const r = CONNECTOR_KINDS.has(kind)
      ? await db.deleteFrom('connectors').where('kind', '=', kind as 'github').where('name', '=', name).executeTakeFirst()
      : await db.deleteFrom(tableOf(kind)).where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}

function tableOf(kind: StoredKind): (typeof TABLES)[keyof typeof TABLES] {
  const table = (TABLES as Record<string, (typeof TABLES)[keyof typeof TABLES]>)[kind];
  if (!table) throw new BadParameterError(`unknown resource kind "${kind}"`, { kind });
  return table;
}

function isExpired(expires: Date | null, now = Date.now()): boolean {
  return expires !== null && expires.getTime() <= now;
}

function withoutRevision(resource: Record<string, unknown>): Record<string, unknown> {
  const metadata = resource['metadata'];
  if (!metadata || typeof metadata !== 'object') return resource;
  const { revision: _revision, ...rest } = metadata as Record<string, unknown>;
  return { ...resource, metadata: rest };
}

function toStored(
  kind: StoredKind,
  row: { name: string; resource: Record<string, unknown>; revision: string; expires: Date | null },
): StoredResource {
  const revision = String(row.revision);
  const metadata = { ...(row.resource['metadata'] as Record<string, unknown> | undefined), revision };
  return { kind, name: row.name, resource: { ...row.resource, metadata }, revision, expires: row.expires };
}
