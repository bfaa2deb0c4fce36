// The auth app's entry point for tools (end-to-end tests, benchmarks); apps never import it.
export { AuthService, ADMIN_IDENTITY_FILE } from './service.js';
export { AuthApi, SERVER_VERSION } from './api/auth-api.js';
export * as ca from './ca/index.js';
export { startStack, type Stack } from './stack.js';
