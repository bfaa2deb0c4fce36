import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { register as audit } from './audit.js';
import { register as auth } from './auth.js';
import { register as locks } from './locks.js';
import { register as recordings } from './recordings.js';
import { register as resources } from './resources.js';
import { register as sso } from './sso.js';
import { register as status } from './status.js';
import { register as tokens } from './tokens.js';
import { register as users } from './users.js';

/** Every kwctl command, one small module each. */
export const COMMANDS: ((program: Command, ctx: CommandContext) => void)[] = [resources, users, auth, tokens, locks, status, audit, recordings, sso];
