import { runKwctl } from './cli.js';

process.exitCode = await runKwctl({ argv: process.argv.slice(2) });
