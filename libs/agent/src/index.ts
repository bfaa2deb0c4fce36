export { AGENT_VERSION, KubeAgent, type KubeAgentConfig } from './agent-service.js';
export { AgentPool, type AgentPoolOptions } from './pool.js';
