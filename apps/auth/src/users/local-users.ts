import { AccessDeniedError, BadParameterError, NotFoundError } from '@keyway/errors';
import type { Logger } from '@keyway/log';
import type { Store } from '@keyway/store';
import { checkPasswordPolicy } from './password-policy.js';
import {
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

/** The one answer to every failed login, whatever the reason (Teleport's wording). */
export const LOGIN_FAILED = 'invalid username, password or second factor';

export type LoginFailureReason =
  | 'user_not_found'
  | 'no_password'
  | 'bad_password'
  | 'no_second_factor'
  | 'totp_invalid'
  | 'totp_reused'
  | 'locked_out'
  | 'locked'
  | 'user_gone';

/** Why a login failed: for the auth log and the `user.login` audit event, never for the caller. */
export class LoginFailure {
  constructor(
    readonly reason: LoginFailureReason,
    readonly detail: string,
  ) {}
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
    const row = await this.validToken(token);
    checkPasswordPolicy(password, row.username);
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
   * Checks password and second factor; returns why it failed, or undefined. The reason is for
   * the auth log and the audit event only: callers answer every failure with LOGIN_FAILED. The
   * password hash is verified on every path (a dummy hash for unknown users and users without a
   * password, and also for locked-out users), so each failure takes about the same time.
   * Failures are counted in the same transaction that reads the counter, so parallel guesses
   * cannot exceed the limit; the failure is returned only after that count is committed.
   */
  async authenticate(user: string, password: string, totpCode: string): Promise<LoginFailure | undefined> {
    const now = this.o.now();
    return this.o.store.transaction(async (trx) => {
      const row = await trx
        .selectFrom('users')
        .select(['password_hash', 'totp_secret', 'totp_last_step', 'failed_logins', 'locked_until'])
        .where('name', '=', user)
        .forUpdate()
        .executeTakeFirst();
      const passwordOk = await verifyPassword(row?.password_hash ?? null, password);
      if (!row) return new LoginFailure('user_not_found', `user "${user}" does not exist`);
      if (row.locked_until && row.locked_until > now) {
        return new LoginFailure(
          'locked_out',
          `user "${user}" is locked after ${this.o.maxLoginAttempts} failed login attempts until ${row.locked_until.toISOString()}`,
        );
      }
      let problem: LoginFailure | undefined;
      let step: number | undefined;
      if (!row.password_hash) {
        problem = new LoginFailure('no_password', `user "${user}" has no password yet (signup or reset not completed)`);
      } else if (!passwordOk) {
        problem = new LoginFailure('bad_password', 'wrong password');
      } else if (this.o.secondFactor === 'otp') {
        if (!row.totp_secret) {
          problem = new LoginFailure('no_second_factor', `user "${user}" has no second factor registered; an admin must reset the user`);
        } else {
          step = matchTotp(row.totp_secret, totpCode, now);
          if (step === undefined) {
            problem = new LoginFailure('totp_invalid', 'right password, wrong second factor code');
          } else if (row.totp_last_step !== null && step <= Number(row.totp_last_step)) {
            problem = new LoginFailure('totp_reused', 'right password, second factor code already used');
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
