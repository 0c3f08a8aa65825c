// The start page renders on the server, hydrates in Chromium, and runs the shared
// window function in the browser (AWS's 10-hour example, then edits).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startTimebox, launchBrowser, screenshotDir } from '../harness.mjs';

let timebox;
let browser;

before(async () => {
  timebox = await startTimebox();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  const code = await timebox?.stop();
  assert.equal(code, 0, 'the server shuts down cleanly on SIGTERM');
});

test('the page is rendered on the server, readable without JavaScript', async () => {
  const r = await fetch(`${timebox.url}/`);
  assert.equal(r.status, 200);
  const html = await r.text();
  assert.match(html, /How long does a grant really last\?/);
  assert.match(html, /data-testid="real-length"[^>]*>10h</);
  assert.match(html, /data-hydrated="false"/);
  assert.match(html, /\/pkg\/timebox\.js/);
});

test('health and readiness answer', async () => {
  assert.deepEqual(await (await fetch(`${timebox.url}/healthz`)).json(), { status: 'ok' });
  const ready = await fetch(`${timebox.url}/readyz`);
  assert.equal(ready.status, 200);
  assert.equal((await ready.json()).database, 'ok');
});

test('an unknown page is a designed 404', async () => {
  const r = await fetch(`${timebox.url}/no-such-page`);
  assert.equal(r.status, 404);
  assert.match(await r.text(), /Page not found/);
});

test('the page hydrates and previews the real window in the browser', async () => {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  await page.goto(timebox.url);
  await page.waitForSelector('header[data-hydrated="true"]', { timeout: 20_000 });

  const realLength = page.getByTestId('real-length');
  assert.equal(await realLength.textContent(), '10h', 'portal 8h + session 1h + grant 1h');
  assert.equal(await page.getByTestId('real-end').textContent(), '19:00');
  await page.screenshot({ path: join(screenshotDir, 'home-hydrated.png'), fullPage: true });

  // Editing a field recomputes in the browser: only a hydrated page can do this.
  await page.fill('#duration', '2h');
  await page.waitForFunction(() => document.querySelector('[data-testid="real-length"]')?.textContent === '11h');
  await page.selectOption('#portal', String(12 * 3600));
  await page.fill('#ps_session', 'PT4H');
  await page.waitForFunction(() => document.querySelector('[data-testid="real-length"]')?.textContent === '18h');

  // A wrong value names the field and why, and the field is marked invalid.
  await page.fill('#ps_session', 'PT30M');
  await page.waitForSelector('#ps_session[aria-invalid="true"]');
  assert.match(await page.textContent('#ps-error'), /outside the permission-set session range/);
  await page.fill('#duration', '0');
  await page.waitForSelector('#duration[aria-invalid="true"]');
  assert.match(await page.textContent('#duration-error'), /must be positive/);
  await page.screenshot({ path: join(screenshotDir, 'home-invalid.png'), fullPage: true });

  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(screenshotDir, 'home-phone.png'), fullPage: true });
  assert.deepEqual(problems, [], 'no hydration or console errors');
  await page.close();
});
