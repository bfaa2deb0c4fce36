import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { captureStream } from '@keyway/testing';
import { runProgram } from './index.js';

describe('runProgram', () => {
  it("sends a subcommand's own errors to the given stream and returns their exit code", async () => {
    const program = new Command('tool');
    program.command('sub').requiredOption('--type <t>').action(() => undefined);
    const out = captureStream();
    const err = captureStream();
    expect(await runProgram(program, ['sub'], out, err)).toBe(1);
    expect(err.text()).toMatch(/required option '--type <t>' not specified/);
  });

  it('prints a thrown error as one ERROR line', async () => {
    const program = new Command('tool');
    program.command('boom').action(() => {
      throw new Error('first\nsecond');
    });
    const err = captureStream();
    expect(await runProgram(program, ['boom'], captureStream(), err)).toBe(1);
    expect(err.text()).toBe('ERROR: first second\n');
  });
});
