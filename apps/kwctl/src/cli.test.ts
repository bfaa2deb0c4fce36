import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { captureStream } from '@keyway/testing';
import { runKwctl } from './cli.js';
import { HELP_GROUPS } from './commands/index.js';
import { editorOf } from './commands/edit.js';
import { secondsUntil } from './commands/locks.js';
import { parseRefs, withoutServerStatus } from './commands/resources.js';
import { parseLabels } from './commands/tokens.js';
import { versionLine } from '@keyway/log';

// kwctl's parsing and help, without a server: no credentials exist in these runs, so a
// command that got as far as connecting would fail with "no credentials".
const empty = mkdtempSync(join(tmpdir(), 'kwctl-unit-'));
const run = async (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  const out = captureStream();
  const err = captureStream();
  const code = await runKwctl({ argv: ['--data-dir', empty, ...argv], out, err, env: { KW_HOME: join(empty, 'kw'), ...env } });
  return { code, out: out.text(), err: err.text() };
};

describe('kwctl --help', () => {
  it('groups every command under a heading, as tctl groups its commands', async () => {
    const help = (await run(['--help'])).out;
    const headings = [...new Set(Object.values(HELP_GROUPS))];
    for (const h of headings) expect(help).toContain(`\n${h}\n`);
    expect(help).not.toMatch(/^Commands:$/m);
    expect(help.indexOf('Resources:')).toBeLessThan(help.indexOf('  create'));
    expect(help).toMatch(/Credentials, first found wins: --identity; the admin identity in the data dir; your `kw login`/);
  });

  it('has a heading for each command it registers', async () => {
    const help = (await run(['--help'])).out;
    const names = [...help.matchAll(/^ {2}([a-z]+)[ |]/gm)].map((m) => m[1]);
    for (const n of names.filter((x) => x !== 'help')) expect(HELP_GROUPS[n ?? ''], n).toBeDefined();
  });

  it('reports a missing required option of a subcommand on its own error stream', async () => {
    const r = await run(['auth', 'export']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/required option '--type <type>' not specified/);
  });
});

describe('kwctl version', () => {
  it('prints Keyway, the package version, the commit and Node.js', async () => {
    expect(versionLine({ KEYWAY_GIT_COMMIT: 'deadbeef' })).toMatch(/^Keyway v0\.\d+\.\d+ git:deadbeef node\d+\.\d+\.\d+$/);
    expect(await run(['version'], { KEYWAY_GIT_COMMIT: 'x1' })).toMatchObject({ code: 0, out: `${versionLine({ KEYWAY_GIT_COMMIT: 'x1' })}\n` });
  });
});

describe('kwctl create', () => {
  it('needs a file, and -f is force', async () => {
    expect((await run(['create'])).err).toMatch(/kwctl create needs a resource file: kwctl create FILE \(or - for stdin\); -f means --force, as in tctl/);
    expect((await run(['create', '-f'])).err).toMatch(/needs a resource file/);
    expect((await run(['create', 'a.yaml', '--filename', 'b.yaml'])).err).toMatch(/give the file once/);
    expect((await run(['create', '-f', join(empty, 'missing.yaml')])).err).toMatch(/cannot read .*missing\.yaml/);
  });
});

describe('credentials', () => {
  it('says where it looked when there are none', async () => {
    expect((await run(['get', 'roles'])).err).toMatch(/no credentials: no admin identity at .*admin-identity\.pem and no kw login; .*--identity FILE --auth-server HOST:PORT, or log in with `kw login`/);
  });
});

describe('kwctl auth export', () => {
  it('names the TLS types when SSH keys are asked for', async () => {
    for (const t of ['user', 'host']) {
      expect((await run(['auth', 'export', `--type=${t}`])).err).toMatch(new RegExp(`--type=${t} exports SSH keys, and Keyway has no SSH certificate authority yet: use --type=tls-${t}`));
    }
    expect((await run(['auth', 'export', '--type=db'])).err).toMatch(/Allowed choices are tls-user, tls-host, tls, user, host/);
  });
});

describe('parsing', () => {
  it('reads comma lists of kinds and names', () => {
    expect(parseRefs('users,roles/dev')).toEqual([{ kind: 'user' }, { kind: 'role', name: 'dev' }]);
    expect(parseRefs('kube_servers, kube_server/agent-1')).toEqual([{ kind: 'kube_server' }, { kind: 'kube_server', name: 'agent-1' }]);
    expect(parseRefs('all').map((r) => r.kind)).toContain('kube_cluster');
    expect(() => parseRefs('roles/')).toThrow(/"roles\/" is not KIND or KIND\/NAME/);
    expect(() => parseRefs('all/x')).toThrow(/"all" takes no name/);
    expect(() => parseRefs('widgets')).toThrow(/widgets/);
  });

  it('reads labels as k=v pairs', () => {
    expect(parseLabels('--labels', 'env=prod, region=eu,a=b=c')).toEqual({ env: 'prod', region: 'eu', a: 'b=c' });
    expect(() => parseLabels('--labels', 'env')).toThrow(/--labels: "env" is not KEY=VALUE/);
    expect(() => parseLabels('--labels', '=x')).toThrow(/is not KEY=VALUE/);
  });

  it('turns --expires into seconds from now, refusing what is not RFC 3339 or not ahead', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(secondsUntil('2026-01-01T01:00:00Z', now)).toBe(3600);
    expect(secondsUntil('2026-01-01T02:00:00.5+01:00', now)).toBe(3601);
    expect(() => secondsUntil('2026-01-01', now)).toThrow(/RFC 3339/);
    expect(() => secondsUntil('2025-12-31T23:00:00Z', now)).toThrow(/in the future/);
    expect(() => secondsUntil('2040-01-01T00:00:00Z', now)).toThrow(/at most 87600h/);
  });

  it("drops only a kube cluster's status from create's input, and says so", () => {
    const dropped: string[] = [];
    const role = 'kind: role\nversion: v7\nmetadata: {name: r}\nspec: {}\n';
    expect(withoutServerStatus(role, (n) => dropped.push(n))).toBe(role);
    const withStatus = `${role}---\nkind: kube_cluster\nversion: v3\nmetadata: {name: dev}\nspec: {}\nstatus: {agents: [a1]}\n`;
    const out = withoutServerStatus(withStatus, (n) => dropped.push(n));
    expect(out).not.toMatch(/status|agents/);
    expect(out).toMatch(/"name":"r"/);
    expect(dropped).toEqual(['dev']);
    // A role with a status field is not the server's output: left for validation to refuse.
    const odd = `${role}status: {x: 1}\n`;
    expect(withoutServerStatus(odd, () => undefined)).toBe(odd);
  });

  it('picks $EDITOR, then $VISUAL, then vi', () => {
    expect(editorOf({ EDITOR: 'nano', VISUAL: 'code --wait' })).toBe('nano');
    expect(editorOf({ EDITOR: ' ', VISUAL: 'code --wait' })).toBe('code --wait');
    expect(editorOf({})).toBe('vi');
  });
});
