import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { register as kube } from './kube.js';
import { register as login } from './login.js';
import { register as logout } from './logout.js';
import { register as recordings } from './recordings.js';
import { register as signup } from './signup.js';
import { register as status } from './status.js';
import { register as version } from './version.js';

/** Every kw command, one small module each. */
export const COMMANDS: ((program: Command, ctx: CommandContext) => void)[] = [login, logout, status, version, signup, kube, recordings];
