/** Whether the bundle in `distDir` is newer than every source listed in its inputs.json. */
export function bundleIsFresh(distDir: URL, repoRoot?: URL): boolean;
/** Imports the app's fresh bundle, or its TypeScript sources through tsx. */
export function launch(appDir: URL, repoRoot?: URL): Promise<unknown>;
