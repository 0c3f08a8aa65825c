// The whole story in Chromium, against the AWS emulator (moto) and the real OpenID
// provider shaped like Microsoft Entra ID (opaque pairwise sub, groups as object ids;
// Timebox knows people by preferred_username, the identity store by that user
// principal name): a requester asks, an approver with MFA approves, the reaper makes
// the grant active (the assignment exists in the emulator, for the requester's
// Identity Store user), the requester ends it early (the assignment is gone), and the
// auditor finds it in the history with its timeline. Plus the deny path through an
// MFA step-up that keeps the form, and self-approval attempts. Screenshots of every page are kept in
// end2end/screenshots/ as test artifacts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startTimebox, startEmulator, launchBrowser, screenshotDir } from '../harness.mjs';

let aws;
let timebox;
let browser;

before(async () => {
  aws = await startEmulator({ profile: 'entra' });
  timebox = await startTimebox({ signIn: true, aws, profile: 'entra' });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await timebox?.stop();
  aws?.stop();
});

async function signedIn(user) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(timebox.url);
  await page.waitForSelector('header[data-hydrated="true"]', { timeout: 30_000 });
  await page.getByTestId('sign-in').click();
  await page.waitForURL((u) => u.href.startsWith(timebox.provider.issuer));
  await page.fill('input[name="login"]', user);
  await page.fill('input[name="password"]', `${user}-password`);
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(timebox.url)),
    page.click('button[type="submit"]'),
  ]);
  await page.waitForSelector('header[data-hydrated="true"]', { timeout: 30_000 });
  return { context, page, problems };
}

async function goto(page, path) {
  await page.goto(`${timebox.url}${path}`);
  await page.waitForSelector('header[data-hydrated="true"]', { timeout: 30_000 });
}

/**
 * Prints (does not assert) the time to interactive of `path`: navigation start →
 * the page hydrated (its header's data-hydrated turns true), the median of five
 * loads, next to the load of a static HTML page of the same size (the same HTML with
 * its scripts removed, the same stylesheet), the floor of this browser and server.
 */
async function timeToInteractive(context, path) {
  const page = await context.newPage();
  await page.addInitScript(() => {
    new MutationObserver((_, observer) => {
      if (document.querySelector('header[data-hydrated="true"]')) {
        window.__hydratedAt = performance.now();
        observer.disconnect();
      }
    }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-hydrated'] });
  });
  const html = await (await context.request.get(`${timebox.url}${path}`)).text();
  const bare = html.replace(/<script\b[\s\S]*?<\/script>/g, '').replace(/<link[^>]*rel="modulepreload"[^>]*>/g, '');
  await page.route(`${timebox.url}/__static`, (r) => r.fulfill({ body: bare, contentType: 'text/html' }));
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const hydrated = [];
  const stat = [];
  for (let i = 0; i < 5; i++) {
    await page.goto(`${timebox.url}${path}`);
    await page.waitForFunction(() => window.__hydratedAt !== undefined, null, { timeout: 30_000 });
    hydrated.push(await page.evaluate(() => window.__hydratedAt));
    await page.goto(`${timebox.url}/__static`, { waitUntil: 'load' });
    stat.push(await page.evaluate(() => performance.getEntriesByType('navigation')[0].loadEventEnd));
  }
  const [h, f] = [median(hydrated), median(stat)];
  console.log(`time to interactive of ${path}: hydrated at ${h.toFixed(0)} ms (median of 5); `
    + `static HTML of the same size (${(bare.length / 1024).toFixed(0)} KB without scripts, `
    + `${(html.length / 1024).toFixed(0)} KB served): loaded at ${f.toFixed(0)} ms; ratio ${(h / f).toFixed(1)}`);
  await page.close();
}

const shot = (page, name) => page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true });

/** Waits until the catalog has been synced from the emulator (the reaper's first pass). */
async function catalogReady(page) {
  for (let i = 0; i < 60; i++) {
    await goto(page, '/request');
    if ((await page.locator('[data-testid="offers"] tbody tr').count()) > 0) return;
    await page.waitForTimeout(500);
  }
  throw new Error('the catalog was never synced from the emulator');
}

/**
 * After an action answered "sign in again with MFA": follows the step-up link, signs
 * `user` in at the provider with the one-time code, and waits to be back on `path`.
 */
async function stepUp(page, user, path) {
  const link = page.getByTestId('step-up');
  await link.waitFor({ timeout: 30_000 });
  assert.match(await page.textContent('.error-note'), /multi-factor authentication/);
  await shot(page, '03-step-up');
  await link.click();
  await page.waitForURL((u) => u.href.startsWith(timebox.provider.issuer));
  await page.fill('input[name="login"]', user);
  await page.fill('input[name="password"]', `${user}-password`);
  await page.fill('input[name="otp"]', '123456');
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(`${timebox.url}${path}`)),
    page.click('button[type="submit"]'),
  ]);
  await page.waitForSelector('header[data-hydrated="true"]', { timeout: 30_000 });
}

/** Fills and submits the request form; resolves to the new grant's id. */
async function ask(page, { account, permissionSet, duration = '1h', why }) {
  await catalogReady(page);
  await page.fill('#account', account);
  await page.selectOption('#permission_set', permissionSet);
  await page.fill('#duration', duration);
  await page.fill('#justification', why);
  // The real window is previewed before submitting.
  await page.getByTestId('request-preview').getByTestId('real-end').waitFor();
  const preview = await page.getByTestId('request-preview').textContent();
  assert.match(preview, /sessions opened before then can last until/);
  await Promise.all([
    page.waitForURL(/\/grants\/[0-9a-f-]{36}$/),
    page.getByTestId('submit-request').click(),
  ]);
  return page.url().split('/').pop();
}

async function api(page, method, path, body) {
  return page.evaluate(
    async ([method, path, body]) => {
      const r = await fetch(path, {
        method,
        headers: { 'content-type': 'application/json' },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: r.status, body: await r.json() };
    },
    [method, path, body],
  );
}

async function waitForState(page, id, state, timeout = 30_000) {
  await page.waitForSelector(`[data-testid="grant"][data-state="${state}"]`, { timeout });
}

test('a requester asks, an approver approves, the grant is provisioned, ended early and audited', async () => {
  const account = aws.accounts['payments-prod'];
  const psArn = aws.permission_sets.AdministratorAccess;
  const rita = await signedIn('rita');

  // Invalid input is explained field by field before anything is sent.
  await catalogReady(rita.page);
  await rita.page.fill('#account', account);
  await rita.page.selectOption('#permission_set', 'AdministratorAccess');
  await rita.page.fill('#duration', '13h');
  await rita.page.fill('#justification', 'short');
  assert.match(await rita.page.locator('#duration-error').textContent(), /at most/);
  assert.match(await rita.page.locator('#justification-error').textContent(), /at least/);
  await shot(rita.page, '01-request-form-errors');

  const id = await ask(rita.page, { account, permissionSet: 'AdministratorAccess', why: 'Investigating the payments outage INC-42' });
  await waitForState(rita.page, id, 'pending');
  await shot(rita.page, '02-grant-pending');

  // Rita is not an approver, and the API refuses her approving her own request.
  const self = await api(rita.page, 'POST', `/api/v1/grants/${id}/approve`, {});
  assert.equal(self.status, 403);
  assert.ok(['forbidden', 'own_request'].includes(self.body.error.code), JSON.stringify(self.body));

  // My grants shows it and updates live (no reload) as it moves.
  await goto(rita.page, '/grants');
  await rita.page.waitForSelector(`tr[data-grant="${id}"][data-state="pending"]`);

  // Arno signed in without MFA: approving from his inbox sends him through a step-up
  // sign-in (the one-time code), which brings him back to the request with his
  // comment; then he approves.
  const arno = await signedIn('arno');
  await goto(arno.page, '/inbox');
  const item = arno.page.locator(`article[data-grant="${id}"]`);
  await item.waitFor();
  assert.match(await item.textContent(), /rita@corp\.example asks for AdministratorAccess/);
  assert.match(await item.textContent(), /sessions opened before then can last until/);
  await shot(arno.page, '03-inbox');
  await item.locator('input[name="comment"]').fill('Approved for INC-42');
  await item.getByTestId('approve').click();
  await stepUp(arno.page, 'arno', `/grants/${id}`);
  assert.equal(await arno.page.inputValue('#comment'), 'Approved for INC-42', 'the form is kept');
  await arno.page.getByTestId('approve').click();
  // Approved: the reaper may already have moved it on.
  await arno.page.waitForSelector('[data-testid="grant"]:not([data-state="pending"])', { timeout: 30_000 });
  assert.match(await arno.page.textContent('.approvals'), /Arno Approver \(arno@corp\.example\) approved/);

  // The reaper provisions it; Rita's list follows without a reload.
  await rita.page.waitForSelector(`tr[data-grant="${id}"][data-state="active"]`, { timeout: 60_000 });
  await shot(rita.page, '04-my-grants-active');
  const assigned = await aws.assignments(account, psArn);
  assert.ok(
    assigned.some((a) => a.PrincipalType === 'USER' && a.PrincipalId === aws.users.rita),
    `the emulator holds Rita's assignment: ${JSON.stringify(assigned)}`,
  );

  // "Active now" lists it with its time left.
  await goto(arno.page, '/active');
  await arno.page.waitForSelector(`tr[data-grant="${id}"]`);
  await shot(arno.page, '05-active-now');

  // Rita is done early.
  await rita.page.locator(`tr[data-grant="${id}"]`).getByTestId('done').click();
  await rita.page.waitForSelector(`tr[data-grant="${id}"][data-state="revoked"]`, { timeout: 60_000 });
  const after = await aws.assignments(account, psArn);
  assert.ok(
    !after.some((a) => a.PrincipalType === 'USER' && a.PrincipalId === aws.users.rita),
    `the assignment is gone from the emulator: ${JSON.stringify(after)}`,
  );
  // Her sessions are closed too: the emulator holds Timebox's SCP on the account,
  // denying her Identity Store id on AdministratorAccess's roles only.
  let denies = [];
  for (const until = Date.now() + 30_000; Date.now() < until; ) {
    denies = await aws.sessionDenies(account);
    if (denies.length > 0) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(
    denies.some((s) => s.Effect === 'Deny'
      && s.Condition.StringEquals['identitystore:userId'].includes(aws.users.rita)
      && s.Condition.ArnLike['aws:PrincipalArn'].endsWith('AWSReservedSSO_AdministratorAccess_*')),
    `the SCP denies her sessions: ${JSON.stringify(denies)}`,
  );

  // The auditor finds it in the history, with its timeline and a verified chain.
  const audrey = await signedIn('audrey');
  await goto(audrey.page, '/history?user=rita%40corp.example&state=revoked');
  const row = audrey.page.locator(`tr[data-grant="${id}"]`);
  await row.waitFor();
  await shot(audrey.page, '06-history');
  await timeToInteractive(audrey.context, '/history');
  await Promise.all([audrey.page.waitForURL(new RegExp(`/grants/${id}$`)), row.locator('a').first().click()]);
  await waitForState(audrey.page, id, 'revoked');
  await audrey.page.getByTestId('timeline').waitFor();
  await audrey.page.getByTestId('chain-ok').waitFor();
  await audrey.page.getByTestId('sessions-closed-at').waitFor({ timeout: 30_000 });
  const sentence = (await audrey.page.getByTestId('window-sentence').textContent()).replace(/\s+/g, ' ');
  assert.match(sentence, /Access ended .* its sessions were closed at .* so the real window ended at .* Without the deny they could have lasted until .* \(portal session 8h \+ this permission set's session 1h/s);
  assert.equal(
    await audrey.page.getByTestId('sessions-close').getAttribute('data-outcome'),
    'closed_scp',
  );
  await audrey.page.getByTestId('timeline-avoided').waitFor();
  await shot(audrey.page, '07-grant-page-auditor');

  // The audit log: the grant's events, newest first, the session close among them.
  await goto(audrey.page, `/audit?grant=${id}`);
  const log = audrey.page.getByTestId('audit-log');
  await log.waitFor();
  const actions = await log.locator('tbody tr td:nth-child(4)').allTextContents();
  assert.match(actions[0], /sessions_closed/, actions.join(' | '));
  assert.ok(actions.some((a) => /^request/.test(a)), actions.join(' | '));
  await shot(audrey.page, '07b-audit-log');

  // The whole record verified on demand: the button, the background job, the result
  // on the page (every event, then every grant's record against its events).
  await audrey.page.getByTestId('verification-none').waitFor();
  await audrey.page.getByTestId('verify-audit').click();
  const verified = audrey.page.locator('[data-testid="verification-state"][data-state="passed"]');
  await verified.waitFor({ timeout: 30_000 });
  assert.match(
    (await verified.textContent()).replace(/\s+/g, ' '),
    /asked for by audrey.*the audit chain verifies: \d+ events verified, \d+ checkpoints verified, \d+ grant rows match their events/,
  );
  await shot(audrey.page, '07c-audit-verified');

  // The history without JavaScript: the server-rendered page already holds the row.
  const html = await (await audrey.context.request.get(`${timebox.url}/history?user=rita%40corp.example`)).text();
  assert.ok(html.includes(id), 'the history is server-rendered');
  const csv = await (await audrey.context.request.get(`${timebox.url}/api/v1/grants/export?format=csv&user=rita%40corp.example`)).text();
  assert.ok(csv.startsWith('id,requester,'), csv.slice(0, 80));
  assert.ok(csv.includes(id));

  for (const s of [rita, arno, audrey]) {
    assert.deepEqual(s.problems, [], 'no page error');
    await s.context.close();
  }
});

test('break-glass needs a recent MFA sign-in, and the step-up keeps the request form', async () => {
  const account = aws.accounts['web-prod'];
  const rita = await signedIn('rita');
  await catalogReady(rita.page);
  const why = 'Production is down and no approver answers INC-7';
  await rita.page.fill('#account', account);
  await rita.page.selectOption('#permission_set', 'AdministratorAccess');
  await rita.page.fill('#duration', '30m');
  await rita.page.fill('#justification', why);
  await rita.page.check('input[name="break_glass"]');
  await rita.page.getByTestId('submit-request').click();
  await stepUp(rita.page, 'rita', '/request');
  assert.equal(await rita.page.inputValue('#justification'), why, 'the form is kept');
  assert.equal(await rita.page.inputValue('#duration'), '30m');
  assert.ok(await rita.page.isChecked('input[name="break_glass"]'));
  await Promise.all([
    rita.page.waitForURL(/\/grants\/[0-9a-f-]{36}$/),
    rita.page.getByTestId('submit-request').click(),
  ]);
  // It approves itself: the reaper makes it active, and a review is owed.
  await rita.page.waitForSelector('[data-testid="grant"][data-state="active"]', { timeout: 60_000 });
  assert.match(await rita.page.textContent('main'), /a review is owed/);
  await shot(rita.page, '10-break-glass');
  assert.deepEqual(rita.problems, [], 'no page error');
  await rita.context.close();
});

test('an approver denies a request; nobody approves their own request', async () => {
  const account = aws.accounts['web-prod'];
  const rita = await signedIn('rita');
  const id = await ask(rita.page, { account, permissionSet: 'ReadOnlyAccess', duration: '30m', why: 'Reading the web logs for a bug report' });

  // Mia signs in with MFA: she denies at once, with a comment Rita reads.
  const mia = await signedIn('mia');
  await goto(mia.page, `/grants/${id}`);
  await mia.page.fill('#comment', 'Use the log archive instead');
  await mia.page.getByTestId('deny').click();
  await waitForState(mia.page, id, 'denied');
  await shot(mia.page, '08-denied');
  await goto(rita.page, `/grants/${id}`);
  await waitForState(rita.page, id, 'denied');
  assert.match(await rita.page.textContent('.approvals'), /Mia Approver \(mia@corp\.example\) denied/);
  assert.equal(await rita.page.getByTestId('requester').textContent(), 'Rita Requester (rita@corp.example)');

  // Ada holds every role, yet cannot approve her own request: no button, and the API says why.
  const ada = await signedIn('ada');
  const own = await ask(ada.page, { account, permissionSet: 'ReadOnlyAccess', duration: '30m', why: 'Checking the web tier configuration' });
  assert.equal(await ada.page.getByTestId('approve').count(), 0, 'no approve button on one\'s own request');
  const r = await api(ada.page, 'POST', `/api/v1/grants/${own}/approve`, {});
  assert.equal(r.status, 403);
  assert.equal(r.body.error.code, 'own_request');
  // Bad input to the API: a 4xx with a machine-readable body naming the field.
  const bad = await api(ada.page, 'POST', '/api/v1/grants', { account_id: '12', permission_set: 'ReadOnlyAccess', duration: '1h', justification: 'a good reason here' });
  assert.equal(bad.status, 422);
  assert.equal(bad.body.error.field, 'account_id');
  await shot(ada.page, '09-own-request');
  for (const s of [rita, mia, ada]) await s.context.close();
});
