// kw's entry point for tools (end-to-end tests); apps never import it.
export { runKw, type RunOptions } from './cli.js';
