/** The release every Keyway program reports (servers in ping and heartbeats, CLIs in `version`). */
export const KEYWAY_VERSION = '0.1.0';
