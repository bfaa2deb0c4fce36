export { createTestDatabase, type TestDatabase } from './database.js';
export { adminDatabaseUrl } from './global-setup.js';
export { captureStream } from './capture.js';
export { runCommand, startProcess, type LongRunning, type RunResult } from './process.js';
export { startTcpBalancer, type TcpBalancer } from './tcp-balancer.js';
