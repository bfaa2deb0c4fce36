export { configSchema, type KeywayConfigInput, type ParsedConfig } from './schema.js';
export { loadConfig, DEFAULT_DATA_DIR, type KeywayConfig, type LoadConfigOptions } from './load.js';
export { fromTeleport, type TeleportMapping } from './teleport.js';
export { goYamlBoolean, GO_YAML_BOOLEAN_SPELLINGS } from './go-yaml.js';
