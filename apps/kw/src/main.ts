import { runKw } from './cli.js';

process.exitCode = await runKw({ argv: process.argv.slice(2) });
