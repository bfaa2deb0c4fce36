export * from './gen/keyway/auth/v1/auth.js';
