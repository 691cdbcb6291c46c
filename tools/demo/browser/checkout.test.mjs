// Drives the demo's checkout page in Debian's headless Chromium (playwright-core, no bundled
// browser): a signed-in visitor whose checkout the app server started (POST /v1/checkout) →
// Subscribe, which runs the real @tosspayments/tosspayments-sdk loader against the demo's
// stand-in for Toss's script → the sandbox's card window → a test card → billing-api's redirect
// under the Lambda emulator → the app's /done page (GET /v1/subscription); then another visitor
// whose card is refused at registration → /failed. Every request must stay on 127.0.0.1.
//
// Run by tools/demo/tests/e2e_browser.rs against a running `demo serve`:
//   DEMO_APP_URL=http://127.0.0.1:… SANDBOX_URL=http://127.0.0.1:… ARTIFACT_DIR=… node checkout.test.mjs
// Prints `RESULT {"subscribed":"cus_…","refused":"cus_…","orderId":"…"}` (customer keys) for the
// Rust side to check the table.
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
  // What the browser fetched; anything off this machine is refused and remembered.
  const requested = [];
  const offMachine = [];
  await context.route(
    (url) => !["127.0.0.1", "localhost"].includes(url.hostname),
    (route) => {
      offMachine.push(route.request().url());
      return route.abort();
    },
  );
  page.on("request", (request) => requested.push(request.url()));

  // 1. A signed-in visitor with a card that works: the subscription starts, month 1 is charged.
  await page.goto(`${app}/`);
  const user = (await page.locator("#user-id").textContent()).trim();
  assert.match(user, /^user_demo_[0-9a-z]{26}$/);
  const subscribed = (await page.locator("#customer-key").textContent()).trim();
  assert.match(subscribed, /^cus_[0-9a-f]{32}$/, "the backend's random customer key");
  await page.locator("#subscribe:enabled").waitFor();
  await shot("01-checkout");

  await page.click("#subscribe");
  await page.waitForURL((url) => url.href.startsWith(`${sandbox}/billing-auth?`));
  const cardWindow = new URL(page.url());
  assert.match(cardWindow.searchParams.get("clientKey"), /^test_ck_/);
  assert.equal(cardWindow.searchParams.get("customerKey"), subscribed);
  const stateUrl = (route) =>
    new RegExp(`/lambda-url/billing-api/billing/${route}\\?state=[0-9a-f]{64}$`);
  assert.match(cardWindow.searchParams.get("successUrl"), stateUrl("success"));
  assert.match(cardWindow.searchParams.get("failUrl"), stateUrl("fail"));
  assert.equal(cardWindow.searchParams.get("customerEmail"), `${user}@example.com`);
  // The page ran the npm package's loader, and the loader fetched the script at its `src`.
  assert.ok(requested.includes(`${app}/vendor/tosspayments-sdk.js`), requested.join("\n"));
  assert.ok(requested.includes(`${app}/toss-sdk/v2/standard`), requested.join("\n"));
  await page.check("#card-ok");
  await shot("02-card-window");

  await page.click("#submit-card");
  await page.waitForURL(`${app}/done`);
  await assert.doesNotReject(page.locator("#status").waitFor());
  assert.equal((await page.locator("#user-id").textContent()).trim(), user);
  assert.equal((await page.locator("#status").textContent()).trim(), "active");
  assert.equal((await page.locator("#credits").textContent()).trim(), "30");
  const rows = page.locator("#ledger tbody tr");
  assert.equal(await rows.count(), 1);
  const row = await rows.first().textContent();
  assert.ok(row.includes("3,900원") && row.includes("DONE"), `ledger row: ${row}`);
  await shot("03-done");
  step(`${user} (${subscribed}) subscribed: /done shows active, 30 credits, one DONE charge of 3,900원`);

  // 2. Another visitor (signed out, then in as a new user), whose card the window refuses.
  await context.clearCookies();
  await page.goto(`${app}/`);
  const otherUser = (await page.locator("#user-id").textContent()).trim();
  assert.notEqual(otherUser, user);
  const refused = (await page.locator("#customer-key").textContent()).trim();
  assert.notEqual(refused, subscribed);
  await page.locator("#subscribe:enabled").waitFor();

  // The loader and the stand-in refuse what Toss's SDK refuses before any window opens.
  const refusals = await page.evaluate(async () => {
    const { loadTossPayments } = await import("/vendor/tosspayments-sdk.js");
    const toss = await loadTossPayments("test_ck_D5GePWvyJnrK0W0k6q8gLzN97Eoq", {
      src: "/toss-sdk/v2/standard",
    });
    const codeOf = async (run) => {
      try {
        await run();
        return "accepted";
      } catch (error) {
        return error.code ?? error.name;
      }
    };
    return {
      secretKeyAsCustomerKey: await codeOf(() =>
        toss.payment({ customerKey: "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R" }),
      ),
      customerKeyWithSpace: await codeOf(() => toss.payment({ customerKey: "user 1" })),
      relativeSuccessUrl: await codeOf(() =>
        toss
          .payment({ customerKey: "cus_0123456789abcdef" })
          .requestBillingAuth({ method: "CARD", successUrl: "/ok", failUrl: "/fail" }),
      ),
      liveClientKey: await codeOf(() => loadTossPayments("live_ck_x", { src: "/toss-sdk/v2/standard" })),
    };
  });
  assert.deepEqual(refusals, {
    secretKeyAsCustomerKey: "INVALID_CUSTOMER_KEY",
    customerKeyWithSpace: "INVALID_CUSTOMER_KEY",
    relativeSuccessUrl: "INCORRECT_SUCCESS_URL_FORMAT",
    liveClientKey: "INVALID_CLIENT_KEY",
  });
  assert.equal(new URL(page.url()).pathname, "/", "no refused call opened a window");
  step("the SDK path refuses a secret key as customer key, a bad customer key, a relative URL, a live key");

  await page.click("#subscribe");
  await page.waitForURL((url) => url.href.startsWith(`${sandbox}/billing-auth?`));
  assert.equal(new URL(page.url()).searchParams.get("customerKey"), refused);
  await page.check("#card-invalid-number");
  await shot("04-card-window-invalid-number");
  await page.click("#submit-card");
  await page.waitForURL(`${app}/failed?code=INVALID_CARD_NUMBER`);
  assert.equal((await page.locator("#fail-code").textContent()).trim(), "INVALID_CARD_NUMBER");
  await shot("05-failed");
  step(`${otherUser} (${refused}) refused: /failed?code=INVALID_CARD_NUMBER`);

  // 3. What Toss saw: one approved payment of 3,900원, nothing for the refused card.
  const state = await (await fetch(`${sandbox}/__sandbox/state`)).json();
  const done = state.payments.filter((p) => p.status === "DONE");
  assert.equal(done.length, 1, JSON.stringify(state.payments));
  assert.equal(done[0].totalAmount, 3900);
  assert.equal(done[0].customerKey, subscribed);
  assert.equal(state.billingKeys.filter((k) => k.customerKey === refused).length, 0);
  step("sandbox ledger: one DONE payment of 3,900원, no billing key for the refused card");
  assert.deepEqual(offMachine, [], "the browser tried to leave the machine");

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
