// Starts a real Timebox server (the release build) on a free port with its own SQLite
// file, and a headless Chromium, for the browser tests. Nothing here is a stand-in:
// the tests talk to the binary that ships.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const here = new URL('.', import.meta.url).pathname;
export const repoRoot = resolve(here, '..');
export const screenshotDir = join(here, 'screenshots');

async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/**
 * Starts the server; resolves once /healthz answers. With `{ signIn: true }` it also
 * starts the real OpenID provider (end2end/oidc) and configures Timebox for it; the
 * result then has `provider.issuer` and `users` (name → password).
 */
/**
 * Starts the AWS emulator (moto_server, installed by .ci/setup) on a free port and
 * seeds it with the demo organisation (.ci/seed_moto.py), its people named as the
 * provider `profile` provisions them (TIMEBOX_SETTINGS in oidc/provider.mjs). Resolves
 * to its URL, the seeded ids and a `stop()`.
 */
/** Runs a Python snippet (boto3 comes with moto) and parses the JSON it prints. */
function python(code, args) {
  return new Promise((ok, fail) => {
    const p = spawn('python3', ['-c', code, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => (code === 0 ? ok(JSON.parse(out)) : fail(new Error(err))));
  });
}

export async function startEmulator({ profile = 'plain' } = {}) {
  const { TIMEBOX_SETTINGS } = await import('./oidc/provider.mjs');
  const domain = TIMEBOX_SETTINGS[profile].userDomain;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await fetch(`${url}/moto-api/data.json`);
      if (r.ok) break;
    } catch {}
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('moto_server did not start (is it on PATH? .ci/setup installs it)');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const seeded = await new Promise((ok, fail) => {
    const flags = domain ? ['--domain', domain] : [];
    const seed = spawn('python3', [join(repoRoot, '.ci', 'seed_moto.py'), url, ...flags, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    seed.stdout.on('data', (d) => (out += d));
    seed.stderr.on('data', (d) => (err += d));
    seed.on('exit', (code) => (code === 0 ? ok(JSON.parse(out.trim().split('\n').pop())) : fail(new Error(`seeding failed: ${err}`))));
  });
  return {
    url,
    ...seeded,
    /** The emulator's account assignments of one account and permission set. */
    async assignments(accountId, permissionSetArn) {
      return python(`import boto3, json, sys
c = boto3.client("sso-admin", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
r = c.list_account_assignments(InstanceArn=sys.argv[2], AccountId=sys.argv[3], PermissionSetArn=sys.argv[4])
print(json.dumps(r["AccountAssignments"]))`, [url, seeded.instance_arn, accountId, permissionSetArn]);
    },
    /** The statements of the SCPs Timebox owns on one account (timebox-sessions-*). */
    async sessionDenies(accountId) {
      return python(`import boto3, json, sys
c = boto3.client("organizations", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
out = []
for p in c.list_policies_for_target(TargetId=sys.argv[2], Filter="SERVICE_CONTROL_POLICY")["Policies"]:
    if p["Name"].startswith("timebox-sessions-"):
        out += json.loads(c.describe_policy(PolicyId=p["Id"])["Policy"]["Content"])["Statement"]
print(json.dumps(out))`, [url, accountId]);
    },
    stop() {
      child.kill('SIGTERM');
    },
  };
}

/**
 * Starts the Timebox binary ($TIMEBOX_BIN) on a free port with a fresh SQLite file;
 * with `signIn`, behind a test OpenID provider shaped like `profile` (plain, entra,
 * okta, google) and configured for it as docs/identity.md says; with `aws`, against
 * that emulator.
 */
export async function startTimebox({ signIn = false, aws = null, profile = 'plain' } = {}) {
  const bin = process.env.TIMEBOX_BIN;
  if (!bin) throw new Error('TIMEBOX_BIN must name the release binary (the test command sets it)');
  const dir = mkdtempSync(join(tmpdir(), 'timebox-e2e-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let provider = null;
  let signInEnv = {};
  let clientSecret = null;
  if (signIn) {
    const { startProvider, TIMEBOX_SETTINGS } = await import('./oidc/provider.mjs');
    clientSecret = `e2e-${Math.random().toString(36).slice(2)}`;
    provider = await startProvider({
      port: 0,
      clientId: 'timebox',
      clientSecret,
      redirectUris: [`${url}/auth/callback`],
      postLogoutRedirectUris: [`${url}/`],
      profile,
    });
    signInEnv = {
      TIMEBOX_OIDC__ISSUER: provider.issuer,
      TIMEBOX_OIDC__CLIENT_ID: 'timebox',
      TIMEBOX_OIDC__CLIENT_SECRET: clientSecret,
      TIMEBOX_OIDC__REQUESTER_GROUPS: 'timebox-requesters',
      TIMEBOX_OIDC__APPROVER_GROUPS: 'timebox-approvers',
      TIMEBOX_OIDC__AUDITOR_GROUPS: 'timebox-auditors',
      TIMEBOX_OIDC__ADMIN_GROUPS: 'timebox-admins',
      TIMEBOX_OIDC__APPROVERS_NEED_MFA: 'true',
      TIMEBOX_SESSION__SECURE_COOKIE: 'false',
      ...TIMEBOX_SETTINGS[profile].env,
    };
  }
  const env = {
    ...process.env,
    TIMEBOX_SERVER__BIND: `127.0.0.1:${port}`,
    TIMEBOX_SERVER__PUBLIC_URL: url,
    TIMEBOX_SERVER__SITE_ROOT: process.env.TIMEBOX_SITE_ROOT ?? join(repoRoot, 'target', 'site'),
    TIMEBOX_DATABASE__URL: `sqlite://${join(dir, 'timebox.db')}`,
    TIMEBOX_LOG__FORMAT: 'json',
    ...signInEnv,
    ...(aws
      ? {
          TIMEBOX_AWS__ENDPOINT_URL: aws.url,
          AWS_ACCESS_KEY_ID: 'testing',
          AWS_SECRET_ACCESS_KEY: 'testing',
          AWS_REGION: 'us-east-1',
          TIMEBOX_REAPER__INTERVAL: '1s',
        }
      : {}),
  };
  if (aws) {
    // Who may ask for what in the browser tests (docs/policy.md): the demo
    // requesters (and admins) ask, the approvers group decides, one approval.
    const policy = join(dir, 'policy.toml');
    writeFileSync(policy, `[[policy]]
name = "e2e-one-approval"
requesters = ["group:timebox-requesters", "group:timebox-admins"]
accounts = ["*"]
permission_sets = ["AdministratorAccess", "ReadOnlyAccess", "DatabaseAdmin"]
max_duration = "4h"
approvers = ["group:timebox-approvers", "group:timebox-admins"]
approvals_required = 1

# Break-glass: the requester approves it themself, with a recent MFA sign-in, and
# owes a review afterwards.
[[policy]]
name = "e2e-break-glass"
requesters = ["group:timebox-requesters"]
accounts = ["*"]
permission_sets = ["AdministratorAccess"]
max_duration = "1h"
break_glass = true
approvers = ["group:timebox-approvers"]
min_justification = 20
`);
    env.TIMEBOX_POLICY__FILE = policy;
  }
  const child = spawn(bin, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let stopping = false;
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  // A server that dies under a test says why (its last lines), instead of leaving
  // only "connection refused" behind.
  child.once('exit', (code, signal) => {
    if (!stopping) console.error(`timebox exited unexpectedly (${code ?? signal}); its last output:\n${output.slice(-6000)}`);
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      await provider?.close();
      throw new Error(`timebox exited early (${child.exitCode}):\n${output}`);
    }
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await provider?.close();
      throw new Error(`timebox did not answer /healthz within 30 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    dir,
    provider,
    clientSecret,
    output: () => output,
    async stop() {
      stopping = true;
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      await provider?.close();
      rmSync(dir, { recursive: true, force: true });
      return child.exitCode;
    },
  };
}

export async function launchBrowser() {
  mkdirSync(screenshotDir, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}
