// Entry point of a benchmark thread: a worker thread does not inherit tsx's loader, so it
// registers it, then runs the TypeScript module named in workerData.module.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);
