export { SsoLoginError, type BeginInput, type BeginResult, type CompleteInput, type ConnectorResource, type DriverOptions, type SsoDriver, type SsoIdentity } from './driver.js';
export { DEFAULT_TRAIT_BOUNDS, mapToRoles, toTraits, type TraitBounds, type ValueMapping } from './mapping.js';
export { createOidcDriver, parseMaxAge, type OidcDriverOptions } from './oidc.js';
