/**
 * The small page a browser ends an SSO login on (served by kw's callback, or by the proxy
 * when there is no kw to go back to): what happened, and that the window can be closed.
 */
export function htmlPage(title: string, message: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Keyway: ${escapeHtml(title)}</title><style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;line-height:1.5}</style></head><body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></body></html>`;
}

/** Headers for that page: nothing loads from it, nothing frames it. */
export const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
} as const;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
