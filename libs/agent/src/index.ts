export { AGENT_VERSION, KubeAgent, type KubeAgentConfig } from './agent-service.js';
export { AgentPool, splitHostPort, type AgentPoolOptions } from './pool.js';
