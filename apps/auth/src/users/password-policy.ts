import { BadParameterError } from '@keyway/errors';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from './secrets.js';

/**
 * The rules a new password must meet, wherever one is set (signup, reset). Each refusal names
 * its rule, so the person choosing the password knows what to change:
 * - at least MIN_PASSWORD_LENGTH characters (code points, so an emoji counts once) and at most
 *   MAX_PASSWORD_LENGTH;
 * - not made only of whitespace, control or invisible format characters (twelve spaces, or a
 *   string of zero-width joiners, are no secret);
 * - not the user's name, compared without regard to case or surrounding whitespace.
 */
export function checkPasswordPolicy(password: string, username: string): void {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) {
    throw new BadParameterError(`password must be at least ${MIN_PASSWORD_LENGTH} characters long (it has ${length})`, { rule: 'min_length' });
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw new BadParameterError(`password must be at most ${MAX_PASSWORD_LENGTH} characters long`, { rule: 'max_length' });
  }
  if (/^[\p{White_Space}\p{Cc}\p{Cf}\p{Zl}\p{Zp}]*$/u.test(password)) {
    throw new BadParameterError('password must not consist only of spaces, control or invisible characters', { rule: 'not_blank' });
  }
  if (username !== '' && password.trim().toLowerCase() === username.trim().toLowerCase()) {
    throw new BadParameterError('password must not be the user name', { rule: 'not_username' });
  }
}
