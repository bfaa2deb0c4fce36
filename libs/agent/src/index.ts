export { AGENT_VERSION, KubeAgent, type KubeAgentConfig } from './agent-service.js';
export { AgentPool, type AgentPoolOptions } from './pool.js';
export { configureAgentKubeconfig, type ConfigureOptions, type ConfigureResult } from './configure.js';
export { AGENT_IMPERSONATION_RULES, DEFAULT_AGENT_NAMESPACE, DEFAULT_AGENT_SERVICE_ACCOUNT, agentObjectNames } from './configure-rbac.js';
