export * from './types.js';
export { KIND_NAMES, SUPPORTED_VERSIONS, MAX_NAME_LENGTH, RESERVED_ROLE_PREFIX, resolveKind, lookupKind, nameProblem, isValidName, type ResourceKind } from './kinds.js';
export {
  parseDuration,
  formatDuration,
  DEFAULT_MAX_SESSION_TTL,
  DEFAULT_MAX_SESSION_TTL_MS,
  MAX_DURATION,
  MAX_DURATION_MS,
  type ParseDurationOptions,
} from './duration.js';
export {
  parseTemplate,
  hasTemplate,
  compileGoRegexp,
  goReplacement,
  type GoRegexp,
  type TemplateExpression,
  type TemplateNode,
  type TraitNamespace,
} from './template.js';
export { KUBERNETES_VERBS, KUBERNETES_V7_KINDS } from './schemas.js';
export { ROLE_VERSIONS, isPodOnlyVersion, defaultAllowKubeResources } from './role-versions.js';
export { FOREIGN_TELEPORT_KINDS, lookupForeignKind, type ForeignKindRule } from './foreign-kinds.js';
export {
  UNSUPPORTED_TELEPORT_FIELDS,
  IGNORED_TELEPORT_FIELDS,
  STORED_TELEPORT_FIELDS,
  STORED_CONDITION_NAMES,
  STORED_OPTION_NAMES,
  type TeleportFieldRule,
} from './teleport-fields.js';
export {
  parseResource,
  validateResourceObject,
  UNSUPPORTED_MESSAGE,
  type FieldProblem,
  type ValidationResult,
} from './validate.js';
export {
  parseResourceDocuments,
  formatResources,
  type ParsedDocuments,
  type SkippedDocument,
  type ResourceProblem,
  type OutputFormat,
} from './documents.js';
export { redactSecrets, SECRET_FIELDS } from './secrets.js';
export { RESOURCE_LIMITS, MAX_DOCUMENTS_TEXT_BYTES, checkDocumentText, checkLabels, checkSerializedSize, labelProblems, shapeProblem, textNestingDepth } from './limits.js';
