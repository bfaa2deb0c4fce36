import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { register as signup } from './signup.js';

/** Every kw command, one small module each. */
export const COMMANDS: ((program: Command, ctx: CommandContext) => void)[] = [signup];
