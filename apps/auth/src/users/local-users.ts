import { AccessDeniedError, BadParameterError, LimitExceededError, NotFoundError } from '@keyway/errors';
import type { Logger } from '@keyway/log';
import type { Store } from '@keyway/store';
import {
  MAX_PASSWORD_LENGTH,
  MIN_PASSWORD_LENGTH,
  hashPassword,
  hashUserToken,
  matchTotp,
  newTotpSecret,
  newUserToken,
  totpUri,
  verifyPassword,
} from './secrets.js';

export interface LocalUsersOptions {
  store: Store;
  clusterName: string;
  secondFactor: 'otp' | 'off';
  maxLoginAttempts: number;
  lockoutDurationMs: number;
  logger: Logger;
  now?: () => Date;
}

export type UserTokenKind = 'signup' | 'reset';

export interface IssuedUserToken {
  token: string;
  user: string;
  kind: UserTokenKind;
  expires: Date;
}

export const DEFAULT_USER_TOKEN_TTL_MS = 60 * 60_000;
const MAX_USER_TOKEN_TTL_MS = 7 * 24 * 60 * 60_000;

/**
 * Local (password + TOTP) credentials: one-time signup/reset tokens, password and TOTP
 * checks, and lockout after repeated failures. Resource data (roles, traits) is the
 * store's user resource; this class owns only the credential columns.
 */
export class LocalUsers {
  private readonly o: Required<LocalUsersOptions>;

  constructor(options: LocalUsersOptions) {
    this.o = { now: () => new Date(), ...options };
  }

  /** Replaces any outstanding token of the user with a fresh one. */
  async issueToken(user: string, kind: UserTokenKind, ttlMs = DEFAULT_USER_TOKEN_TTL_MS): Promise<IssuedUserToken> {
    checkUserTokenTtl(ttlMs);
    const { token, hash } = newUserToken();
    const expires = new Date(this.o.now().getTime() + ttlMs);
    await this.o.store.transaction(async (trx) => {
      const exists = await trx.selectFrom('users').select('name').where('name', '=', user).forUpdate().executeTakeFirst();
      if (!exists) throw new NotFoundError(`user "${user}" not found`, { user });
      await trx.deleteFrom('user_tokens').where('username', '=', user).execute();
      if (kind === 'reset') {
        // A reset revokes the old credentials at once, not when the token is redeemed.
        await trx
          .updateTable('users')
          .set({ password_hash: null, totp_secret: null, totp_last_step: null, failed_logins: 0, locked_until: null })
          .where('name', '=', user)
          .execute();
      }
      await trx.insertInto('user_tokens').values({ token_hash: hash, username: user, kind, expires }).execute();
    });
    return { token, user, kind, expires };
  }

  /**
   * Looks up a token for the person redeeming it; generates the TOTP secret bound to it
   * (once) so the authenticator app and the later check use the same secret.
   */
  async describeToken(token: string) {
    const row = await this.validToken(token);
    let secret = row.totp_secret;
    if (this.o.secondFactor === 'otp' && !secret) {
      // Two first looks at once must agree on one secret: only the first write wins.
      const won = await this.o.store.db
        .updateTable('user_tokens')
        .set({ totp_secret: newTotpSecret() })
        .where('token_hash', '=', row.token_hash)
        .where('totp_secret', 'is', null)
        .returning('totp_secret')
        .executeTakeFirst();
      secret =
        won?.totp_secret ??
        (await this.o.store.db.selectFrom('user_tokens').select('totp_secret').where('token_hash', '=', row.token_hash).executeTakeFirst())
          ?.totp_secret ??
        null;
    }
    return {
      user: row.username,
      kind: row.kind,
      expires: row.expires,
      totpSecret: secret ?? '',
      totpUri: secret ? totpUri(secret, row.username, `Keyway ${this.o.clusterName}`) : '',
      secondFactorRequired: this.o.secondFactor === 'otp',
    };
  }

  /** Redeems a token: sets the password (and TOTP device) and deletes the token. */
  async completeToken(token: string, password: string, totpCode: string): Promise<string> {
    checkPasswordPolicy(password);
    const row = await this.validToken(token);
    let totpStep: number | undefined;
    if (this.o.secondFactor === 'otp') {
      if (!row.totp_secret) {
        throw new BadParameterError('fetch the token first to get the TOTP secret for your authenticator app');
      }
      totpStep = matchTotp(row.totp_secret, totpCode, this.o.now());
      if (totpStep === undefined) throw new AccessDeniedError('invalid second factor code', { reason: 'totp_invalid' });
    }
    const passwordHash = await hashPassword(password);
    await this.o.store.transaction(async (trx) => {
      const deleted = await trx.deleteFrom('user_tokens').where('token_hash', '=', row.token_hash).executeTakeFirst();
      if (Number(deleted.numDeletedRows) !== 1) throw new NotFoundError('token was already used', { reason: 'token_used' });
      await trx
        .updateTable('users')
        .set({
          password_hash: passwordHash,
          totp_secret: this.o.secondFactor === 'otp' ? row.totp_secret : null,
          totp_last_step: totpStep ?? null,
          failed_logins: 0,
          locked_until: null,
        })
        .where('name', '=', row.username)
        .execute();
    });
    this.o.logger.info({ user: row.username, kind: row.kind }, 'user token redeemed');
    return row.username;
  }

  /**
   * Checks password and second factor. Failures are counted in the same transaction that
   * reads the counter, so parallel guesses cannot exceed the limit; the failure is thrown
   * only after that count is committed.
   */
  async authenticate(user: string, password: string, totpCode: string): Promise<void> {
    const now = this.o.now();
    const failure = await this.o.store.transaction(async (trx) => {
      const row = await trx
        .selectFrom('users')
        .select(['password_hash', 'totp_secret', 'totp_last_step', 'failed_logins', 'locked_until'])
        .where('name', '=', user)
        .forUpdate()
        .executeTakeFirst();
      if (row?.locked_until && row.locked_until > now) {
        return new LimitExceededError(
          `user "${user}" is locked after ${this.o.maxLoginAttempts} failed login attempts; try again after ${row.locked_until.toISOString()}`,
          { user, reason: 'locked_out', lockedUntil: row.locked_until.toISOString() },
        );
      }
      const passwordOk = await verifyPassword(row?.password_hash ?? null, password);
      if (!row) return new AccessDeniedError('invalid username or password', { reason: 'bad_password' });
      let problem: AccessDeniedError | undefined;
      let step: number | undefined;
      if (!passwordOk) {
        problem = new AccessDeniedError('invalid username or password', { reason: 'bad_password' });
      } else if (this.o.secondFactor === 'otp') {
        if (!row.totp_secret) {
          problem = new AccessDeniedError(`user "${user}" has no second factor registered; ask an admin to reset the user`, {
            reason: 'no_second_factor',
          });
        } else {
          step = matchTotp(row.totp_secret, totpCode, now);
          if (step === undefined) {
            problem = new AccessDeniedError('invalid second factor code', { reason: 'totp_invalid' });
          } else if (row.totp_last_step !== null && step <= Number(row.totp_last_step)) {
            problem = new AccessDeniedError('second factor code was already used; wait for the next code', { reason: 'totp_reused' });
          }
        }
      }
      if (problem) {
        const failed = row.failed_logins + 1;
        const lock = failed >= this.o.maxLoginAttempts;
        await trx
          .updateTable('users')
          .set({
            failed_logins: lock ? 0 : failed,
            locked_until: lock ? new Date(now.getTime() + this.o.lockoutDurationMs) : row.locked_until,
          })
          .where('name', '=', user)
          .execute();
        if (lock) this.o.logger.warn({ user, attempts: failed }, 'user locked after failed login attempts');
        return problem;
      }
      await trx
        .updateTable('users')
        .set({ failed_logins: 0, locked_until: null, ...(step !== undefined ? { totp_last_step: step } : {}) })
        .where('name', '=', user)
        .execute();
      return undefined;
    });
    if (failure) throw failure;
  }

  private async validToken(token: string) {
    if (!/^[0-9a-f]{48}$/.test(token)) throw new NotFoundError('token not found', { reason: 'token_not_found' });
    const row = await this.o.store.db.selectFrom('user_tokens').selectAll().where('token_hash', '=', hashUserToken(token)).executeTakeFirst();
    if (!row) throw new NotFoundError('token not found or already used', { reason: 'token_not_found' });
    if (row.expires <= this.o.now()) {
      throw new AccessDeniedError(`${row.kind} token expired at ${row.expires.toISOString()}; ask an admin for a new one`, {
        reason: 'token_expired',
      });
    }
    return row;
  }
}

/** Signup and reset tokens live from one second to a week. */
export function checkUserTokenTtl(ttlMs: number): void {
  if (!Number.isFinite(ttlMs) || ttlMs < 1000 || ttlMs > MAX_USER_TOKEN_TTL_MS) {
    throw new BadParameterError('token TTL must be between 1s and 168h', { ttlMs });
  }
}

function checkPasswordPolicy(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new BadParameterError(`password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw new BadParameterError(`password must be at most ${MAX_PASSWORD_LENGTH} characters`);
  }
}
