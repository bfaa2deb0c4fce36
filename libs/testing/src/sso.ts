// Identity providers and a real browser for SSO tests: a subpath of their own, so test files
// that need none of them do not load oidc-provider, samlify and playwright.
export { startGithubStandIn, type GithubStandIn, type GithubTeam } from './idp/github-standin.js';
export { startTestOidcProvider, type StartTestOidcProviderOptions, type TestOidcAccount, type TestOidcClient, type TestOidcProvider } from './idp/oidc-provider.js';
export { startTestSamlIdp, createSelfSignedRsaCert, type TestSamlIdp, type TestSamlIdpOptions, type RespondOverrides, type RsaCertAndKey } from './idp/saml-idp.js';
export { launchTestBrowser, CHROMIUM_PATH, type TestBrowser, type LaunchTestBrowserOptions, type Page as BrowserPage } from './browser.js';
