// kwctl's entry point for tools (end-to-end tests); apps never import it.
export { runKwctl, type RunOptions } from './cli.js';
