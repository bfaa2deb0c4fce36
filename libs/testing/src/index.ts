export { createTestDatabase, type TestDatabase } from './database.js';
export { adminDatabaseUrl } from './global-setup.js';
