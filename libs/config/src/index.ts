export { configSchema, type KeywayConfigInput, type ParsedConfig } from './schema.js';
export { loadConfig, DEFAULT_DATA_DIR, type KeywayConfig, type LoadConfigOptions } from './load.js';
