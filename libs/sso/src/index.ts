export { SsoLoginError, type BeginInput, type BeginResult, type CompleteInput, type ConnectorResource, type DriverOptions, type RecheckInput, type SsoDriver, type SsoIdentity } from './driver.js';
export { DEFAULT_TRAIT_BOUNDS, mapToRoles, toTraits, type TraitBounds, type ValueMapping } from './mapping.js';
export { MAX_SEALED_BYTES, isSecretKey, newSecretKey, open as openSealed, parseClientRedirect, seal, type SsoLoginResponse } from './sealed.js';
export { createGithubDriver } from './github.js';
export { createOidcDriver, parseMaxAge, type OidcDriverOptions } from './oidc.js';
export { createSamlDriver, parseIdpMetadata, MAX_METADATA_BYTES, MAX_SAML_RESPONSE_LENGTH, type SamlDriverOptions } from './saml.js';
export { PAGE_HEADERS, htmlPage } from './page.js';
export { SSO_CALLBACK_TIMEOUT_MS, callbackServer, openBrowser } from './console-callback.js';
