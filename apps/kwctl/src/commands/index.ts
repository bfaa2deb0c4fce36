import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { register as audit } from './audit.js';
import { register as auth } from './auth.js';
import { register as edit } from './edit.js';
import { register as kube } from './kube.js';
import { register as locks } from './locks.js';
import { register as recordings } from './recordings.js';
import { register as resources } from './resources.js';
import { register as sso } from './sso.js';
import { register as status } from './status.js';
import { register as tokens } from './tokens.js';
import { register as users } from './users.js';
import { register as version } from './version.js';

/** Every kwctl command, one small module each, in the order `kwctl --help` lists them. */
export const COMMANDS: ((program: Command, ctx: CommandContext) => void)[] = [resources, edit, users, locks, sso, tokens, kube, status, auth, audit, recordings, version];

/** `kwctl --help` groups commands by what they manage. */
export const HELP_GROUPS: Readonly<Record<string, string>> = {
  create: 'Resources:',
  get: 'Resources:',
  edit: 'Resources:',
  rm: 'Resources:',
  users: 'Users and Access:',
  lock: 'Users and Access:',
  unlock: 'Users and Access:',
  sso: 'Users and Access:',
  tokens: 'Clusters and Agents:',
  kube: 'Clusters and Agents:',
  status: 'Clusters and Agents:',
  auth: 'Certificates:',
  audit: 'Audit:',
  recordings: 'Audit:',
  version: 'Other Commands:',
};
