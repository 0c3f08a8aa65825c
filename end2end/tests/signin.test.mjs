// Sign-in through the real OpenID provider (end2end/oidc, npm oidc-provider) in
// Chromium: each demo user sees what their role allows, the page still hydrates under
// the nonce-based Content-Security-Policy, sign-out ends both sessions, and a forged
// cross-origin form post is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { join } from 'node:path';
import { startTimebox, launchBrowser, screenshotDir } from '../harness.mjs';

let timebox;
let browser;

before(async () => {
  timebox = await startTimebox({ signIn: true });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  const code = await timebox?.stop();
  assert.equal(code, 0, 'the server shuts down cleanly on SIGTERM');
});

/** A fresh browser context (its own cookies), with console errors collected. */
async function freshPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('request', (r) => r.url().startsWith(`${timebox.url}/auth/callback`) && callbacks.push(r.url()));
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  return { context, page, problems };
}

/** Clicks "Sign in" and signs in at the provider as `user`. */
async function signIn(page, user) {
  await page.goto(timebox.url);
  await page.waitForSelector('header[data-hydrated="true"]', { timeout: 20_000 });
  await page.getByTestId('sign-in').click();
  await page.waitForURL((u) => u.href.startsWith(timebox.provider.issuer));
  await page.fill('input[name="login"]', user);
  await page.fill('input[name="password"]', `${user}-password`);
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(timebox.url)),
    page.click('button[type="submit"]'),
  ]);
  await page.waitForSelector('header[data-hydrated="true"]', { timeout: 20_000 });
}

/** Every callback URL the browser visited (with its code and state). */
const callbacks = [];

const visible = async (page, id) => (await page.getByTestId(id).count()) > 0;

test('an anonymous visitor is offered sign-in, and the page hydrates under the CSP', async () => {
  const { context, page, problems } = await freshPage();
  const response = await page.goto(timebox.url);
  const csp = response.headers()['content-security-policy'];
  assert.match(csp, /script-src 'self' 'nonce-[A-Za-z0-9_-]+'/);
  assert.match(csp, /frame-ancestors 'none'/);
  await page.waitForSelector('header[data-hydrated="true"]', { timeout: 20_000 });
  assert.ok(await visible(page, 'sign-in'));
  assert.ok(await visible(page, 'anonymous'));
  assert.deepEqual(problems, [], 'no CSP violation, hydration or console error');
  await context.close();
});

for (const [user, name, roles, shown, hidden] of [
  ['rita', 'Rita Requester', 'requester', ['section-request'], ['section-approve', 'section-all-grants', 'section-audit']],
  ['arno', 'Arno Approver', 'approver', ['section-approve', 'mfa-notice', 'section-all-grants'], ['section-request', 'section-audit']],
  ['mia', 'Mia Approver', 'approver', ['section-approve', 'section-all-grants'], ['mfa-notice', 'section-request', 'section-audit']],
  ['audrey', 'Audrey Auditor', 'auditor', ['section-all-grants', 'section-audit'], ['section-request', 'section-approve']],
  ['ada', 'Ada Admin', 'admin', ['section-request', 'section-approve', 'section-all-grants', 'section-audit'], []],
]) {
  test(`${user} signs in through the provider and sees what a ${roles} may do`, async () => {
    const { context, page, problems } = await freshPage();
    await signIn(page, user);
    const who = await page.getByTestId('signed-in-as').textContent();
    assert.match(who, new RegExp(`Signed in as ${name} \\(${roles}\\)`));
    assert.equal(await page.getByTestId('roles').textContent(), roles);
    for (const id of shown) assert.ok(await visible(page, id), `${user} sees ${id}`);
    for (const id of hidden) assert.ok(!(await visible(page, id)), `${user} does not see ${id}`);
    if (user === 'arno') {
      assert.match(await page.getByTestId('mfa-notice').textContent(), /sign in again with MFA/);
    }
    const cookies = await context.cookies(timebox.url);
    const session = cookies.find((c) => c.name === 'timebox_session');
    assert.ok(session, 'a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Lax');
    await page.screenshot({ path: join(screenshotDir, `signed-in-${user}.png`), fullPage: true });
    assert.deepEqual(problems, [], 'no CSP violation, hydration or console error');
    await context.close();
  });
}

test('signing out ends the Timebox session and the provider session', async () => {
  const { context, page } = await freshPage();
  await signIn(page, 'ada');
  await page.getByTestId('sign-out').click();
  // The provider asks to confirm its own sign-out, then sends the browser back.
  await page.waitForURL((u) => u.href.startsWith(timebox.provider.issuer));
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(timebox.url)),
    page.click('button[type="submit"]'),
  ]);
  await page.waitForSelector('header[data-hydrated="true"]', { timeout: 20_000 });
  assert.ok(await visible(page, 'sign-in'), 'signed out of Timebox');
  // Signing in again needs the password again: the provider's session is gone too.
  await page.getByTestId('sign-in').click();
  await page.waitForURL((u) => u.href.startsWith(timebox.provider.issuer));
  assert.ok((await page.locator('input[name="password"]').count()) > 0, 'the provider asks again');
  await context.close();
});

test('a forged cross-origin form post is refused and changes nothing', async () => {
  const { context, page } = await freshPage();
  await signIn(page, 'ada');
  // Another origin on the same host (so the same site: SameSite=Lax alone would let
  // the cookie through) serves a page that posts to Timebox's sign-out.
  const attacker = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!DOCTYPE html><form id="f" method="post" action="${timebox.url}/auth/logout"></form>
      <script>document.getElementById('f').submit()</script>`);
  });
  attacker.listen(0, '127.0.0.1');
  await once(attacker, 'listening');
  try {
    const refused = page.waitForResponse((r) => r.url() === `${timebox.url}/auth/logout`);
    await page.goto(`http://127.0.0.1:${attacker.address().port}/`);
    const response = await refused;
    assert.equal(response.status(), 403);
    assert.equal((await response.json()).error.code, 'cross_site_request');
  } finally {
    attacker.close();
  }
  await page.goto(timebox.url);
  await page.waitForSelector('header[data-hydrated="true"]', { timeout: 20_000 });
  assert.match(await page.getByTestId('signed-in-as').textContent(), /Ada Admin/, 'still signed in');
  await context.close();
});

test('a tampered callback is refused, and the logs hold no code, state, cookie or secret', async () => {
  const { context, page } = await freshPage();
  await page.goto(`${timebox.url}/auth/login`);
  await page.waitForURL((u) => u.href.startsWith(timebox.provider.issuer));
  const response = await page.goto(`${timebox.url}/auth/callback?code=forged-code-value&state=forged-state-value`);
  assert.equal(response.status(), 400);
  assert.match(await page.getByTestId('auth-message').textContent(), /state mismatch/);
  const cookies = await context.cookies(timebox.url);
  await context.close();

  const logs = timebox.output();
  assert.match(logs, /sign-in callback refused/, 'the failure is logged');
  assert.match(logs, /state_mismatch/, 'with its reason');
  assert.ok(callbacks.length >= 5, 'the sign-ins above went through the callback');
  const secrets = [timebox.clientSecret, 'forged-code-value', 'forged-state-value'];
  for (const url of callbacks) {
    const params = new URL(url).searchParams;
    secrets.push(params.get('code'), params.get('state'));
  }
  for (const c of cookies) secrets.push(c.value);
  for (const secret of secrets.filter(Boolean)) {
    assert.ok(!logs.includes(secret), `the logs must not contain ${secret.slice(0, 4)}…`);
  }
});
