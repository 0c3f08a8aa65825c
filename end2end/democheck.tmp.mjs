// Throwaway check of the running demo (bash .ci/dev): not committed.
import { launchBrowser } from './harness.mjs';
import { execFileSync } from 'node:child_process';
const url = 'http://127.0.0.1:3000';
const browser = await launchBrowser();
const ctx = await browser.newContext();
const page = await ctx.newPage();
await page.goto(url);
await page.waitForSelector('header[data-hydrated="true"]');
await page.getByTestId('sign-in').click();
await page.waitForURL((u) => u.href.startsWith('http://127.0.0.1:9000'));
await page.fill('input[name="login"]', 'rita');
await page.fill('input[name="password"]', 'rita-password');
await Promise.all([page.waitForURL((u) => u.href.startsWith(url)), page.click('button[type="submit"]')]);
await page.waitForSelector('header[data-hydrated="true"]');
for (let i = 0; i < 60; i++) {
  await page.goto(`${url}/request`);
  await page.waitForSelector('header[data-hydrated="true"]');
  if ((await page.locator('[data-testid="offers"] tbody tr').count()) > 0) break;
  await page.waitForTimeout(1000);
}
const accounts = JSON.parse(execFileSync('python3', ['-c', `import boto3,json
o=boto3.client("organizations",endpoint_url="http://127.0.0.1:5000",region_name="us-east-1",aws_access_key_id="t",aws_secret_access_key="t")
print(json.dumps({a["Name"]:a["Id"] for a in o.list_accounts()["Accounts"]}))`]).toString());
console.log(accounts);
const account = accounts['payments-prod'] ?? Object.values(accounts)[1];
await page.fill('#account', account);
await page.selectOption('#permission_set', 'ReadOnlyAccess');
await page.fill('#duration', '1h');
await page.fill('#justification', 'Checking the demo closes sessions INC-1');
await Promise.all([page.waitForURL(/\/grants\/[0-9a-f-]{36}$/), page.getByTestId('submit-request').click()]);
const id = page.url().split('/').pop();
console.log('grant', id);
await page.goto(`${url}/grants`);
await page.waitForSelector(`tr[data-grant="${id}"][data-state="active"]`, { timeout: 60000 });
const t0 = Date.now();
await page.locator(`tr[data-grant="${id}"]`).getByTestId('done').click();
await page.waitForSelector(`tr[data-grant="${id}"][data-state="revoked"]`, { timeout: 60000 });
for (let i = 0; i < 30; i++) {
  await page.goto(`${url}/grants/${id}`);
  await page.waitForSelector('header[data-hydrated="true"]');
  if (await page.getByTestId('sessions-closed-at').count()) break;
  await page.waitForTimeout(1000);
}
console.log('closed after', (Date.now() - t0) / 1000, 's');
console.log((await page.getByTestId('window-sentence').textContent()).replace(/\s+/g, ' '));
console.log(execFileSync('python3', ['-c', `import boto3,json,sys
o=boto3.client("organizations",endpoint_url="http://127.0.0.1:5000",region_name="us-east-1",aws_access_key_id="t",aws_secret_access_key="t")
for p in o.list_policies_for_target(TargetId=sys.argv[1],Filter="SERVICE_CONTROL_POLICY")["Policies"]:
    print(p["Name"], o.describe_policy(PolicyId=p["Id"])["Policy"]["Content"][:400])`, account]).toString());
// Evidence: calls refused after the close (collection every 30 s, calls every 120 s).
for (let i = 0; i < 40; i++) {
  await page.goto(`${url}/grants/${id}`);
  await page.waitForSelector('header[data-hydrated="true"]');
  if (await page.getByTestId('refused-after-close').count()) break;
  await page.waitForTimeout(10000);
}
console.log('refused:', await page.getByTestId('refused-after-close').textContent().catch(() => 'none'));
console.log('flags:', await page.getByTestId('flags').textContent().catch(() => 'none'));
await page.screenshot({ path: '/tmp/demo/grant.png', fullPage: true });
await browser.close();
