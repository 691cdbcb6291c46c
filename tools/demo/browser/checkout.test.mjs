// Drives the demo's checkout page in Debian's headless Chromium (playwright-core, no bundled
// browser): Subscribe → the sandbox's card window → a test card → billing-api's redirect under
// the Lambda emulator → the app's /done page; then a card refused at registration → /failed.
//
// Run by tools/demo/tests/e2e_browser.rs against a running `demo serve`:
//   DEMO_APP_URL=http://127.0.0.1:… SANDBOX_URL=http://127.0.0.1:… ARTIFACT_DIR=… node checkout.test.mjs
// Prints `RESULT {"subscribed":"user_…","refused":"user_…"}` for the Rust side to check the table.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const app = required("DEMO_APP_URL");
const sandbox = required("SANDBOX_URL");
const artifacts = process.env.ARTIFACT_DIR ?? "artifacts";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const timeout = 60_000;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value.replace(/\/$/, "");
}

function step(text) {
  console.log(`browser: ${text}`);
}

mkdirSync(artifacts, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "demo-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 900, height: 900 },
  locale: "ko-KR",
  timezoneId: "Asia/Seoul",
});

let failed = false;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeout);
  const shot = async (name) => {
    const path = join(artifacts, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    step(`screenshot ${path}`);
  };

  // 1. A card that works: the subscription starts and the first month is charged.
  await page.goto(`${app}/`);
  const subscribed = (await page.locator("#customer-key").textContent()).trim();
  assert.match(subscribed, /^user_[0-9a-z]{26}$/);
  await shot("01-checkout");

  await page.click("#subscribe");
  await page.waitForURL((url) => url.href.startsWith(`${sandbox}/billing-auth?`));
  const cardWindow = new URL(page.url());
  assert.match(cardWindow.searchParams.get("clientKey"), /^test_ck_/);
  assert.equal(cardWindow.searchParams.get("customerKey"), subscribed);
  assert.match(cardWindow.searchParams.get("successUrl"), /\/lambda-url\/billing-api\/billing\/success$/);
  assert.match(cardWindow.searchParams.get("failUrl"), /\/lambda-url\/billing-api\/billing\/fail$/);
  await page.check("#card-ok");
  await shot("02-card-window");

  await page.click("#submit-card");
  await page.waitForURL(`${app}/done`);
  await assert.doesNotReject(page.locator("#status").waitFor());
  assert.equal((await page.locator("#customer-key").textContent()).trim(), subscribed);
  assert.equal((await page.locator("#status").textContent()).trim(), "active");
  assert.equal((await page.locator("#credits").textContent()).trim(), "30");
  const rows = page.locator("#ledger tbody tr");
  assert.equal(await rows.count(), 1);
  const row = await rows.first().textContent();
  assert.ok(row.includes("3,900원") && row.includes("DONE"), `ledger row: ${row}`);
  await shot("03-done");
  step(`${subscribed} subscribed: /done shows active, 30 credits, one DONE charge of 3,900원`);

  // 2. A card the card window refuses: back to the app's fail page with Toss's code.
  await page.goto(`${app}/`);
  const refused = (await page.locator("#customer-key").textContent()).trim();
  assert.notEqual(refused, subscribed);
  await page.click("#subscribe");
  await page.waitForURL((url) => url.href.startsWith(`${sandbox}/billing-auth?`));
  await page.check("#card-invalid-number");
  await shot("04-card-window-invalid-number");
  await page.click("#submit-card");
  await page.waitForURL(`${app}/failed?code=INVALID_CARD_NUMBER`);
  assert.equal((await page.locator("#fail-code").textContent()).trim(), "INVALID_CARD_NUMBER");
  await shot("05-failed");
  step(`${refused} refused: /failed?code=INVALID_CARD_NUMBER`);

  // 3. What Toss saw: one approved payment of 3,900원, nothing for the refused card.
  const state = await (await fetch(`${sandbox}/__sandbox/state`)).json();
  const done = state.payments.filter((p) => p.status === "DONE");
  assert.equal(done.length, 1, JSON.stringify(state.payments));
  assert.equal(done[0].totalAmount, 3900);
  assert.equal(done[0].customerKey, subscribed);
  assert.equal(state.billingKeys.filter((k) => k.customerKey === refused).length, 0);
  step("sandbox ledger: one DONE payment of 3,900원, no billing key for the refused card");

  console.log(`RESULT ${JSON.stringify({ subscribed, refused, orderId: done[0].orderId })}`);
} catch (error) {
  failed = true;
  console.error(error);
  try {
    const page = context.pages()[0];
    if (page) {
      await page.screenshot({ path: join(artifacts, "failure.png"), fullPage: true });
      console.error(`browser: failure screenshot ${join(artifacts, "failure.png")} (at ${page.url()})`);
    }
  } catch {
    // the page is gone: nothing to show
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
