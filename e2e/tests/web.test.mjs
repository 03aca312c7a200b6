// The web app in a real headless Chromium against a real `openline serve --demo`: the issue's
// proof list. One server for the file; the scenarios build on each other in order (Ada opts in,
// then writes, then opts out), as a person trying the demo would.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import {
  startServer, launchBrowser, signIn, apiClient, screenshots, TINY_PNG,
  AGENT, ADMIN, ADA, DAN, NORA, PASSWORD,
} from "./helpers.mjs";

let server;
let browser;
let agent; // the agent's page (one tab)
let phone; // a simulated phone (another tab)
let base;

async function contactId(phoneNumber) {
  const api = await apiClient(base, AGENT);
  const page = await api.get("/api/v1/contacts?limit=200");
  return page.body.items.find((c) => c.phone === phoneNumber).id;
}

/** Marks the page, so a test can prove an update arrived without a reload. */
async function markNoReload(page) {
  await page.evaluate(() => { window.__noReload = true; });
}
async function assertNotReloaded(page) {
  assert.equal(await page.evaluate(() => window.__noReload === true), true, "the page was not reloaded");
}

before(async () => {
  server = await startServer();
  base = server.url;
  browser = await launchBrowser();
  const agentContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  agent = await agentContext.newPage();
  const phoneContext = await browser.newContext({ viewport: { width: 420, height: 800 } });
  phone = await phoneContext.newPage();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("an agent signs in and sees their name, organization and role; signs out", async () => {
  await agent.goto(`${base}/messages`);
  assert.match(agent.url(), /\/login\?next=%2Fmessages$/, "redirected to sign in");
  await screenshots(agent, "01-sign-in");
  await agent.getByLabel("E-mail address").fill(AGENT);
  await agent.getByLabel("Password").fill("not-the-password");
  await agent.getByRole("button", { name: "Sign in" }).click();
  await agent.getByText("The e-mail address or password is not right.").waitFor();
  await signIn(agent, base, AGENT);
  await agent.getByText("Amir Agent").waitFor();
  await agent.getByText("Demo Bank Private Clients · agent").waitFor();
  await agent.getByRole("button", { name: "Sign out" }).click();
  await agent.waitForURL(`${base}/login`);
  await signIn(agent, base, AGENT);
});

test("opt-in: the agent asks, Ada taps Yes on her phone, the agent sees it without reloading", async () => {
  // Ada's phone, answering by hand (the persona would otherwise accept by herself).
  await phone.goto(`${base}/phone`);
  await screenshots(phone, "03-phone-pick");
  await phone.getByRole("link", { name: /Ada/ }).click();
  await phone.getByLabel("How this phone answers").selectOption("manual");
  for (let i = 0; i < 50; i++) {
    const phones = await (await fetch(`${base}/sim/phones`)).json();
    if (phones.find((p) => p.phone === ADA)?.behaviour === "manual") { break; }
    await new Promise((r) => setTimeout(r, 100));
  }

  const ada = await contactId(ADA);
  await agent.goto(`${base}/contacts`);
  await agent.getByLabel("Search contacts").fill("ada");
  await agent.getByRole("button", { name: "Search" }).click();
  await agent.getByRole("link", { name: /Ada/ }).click();
  await agent.waitForURL(`${base}/contacts/${ada}`);
  await agent.getByTestId("whatsapp-button").click();
  await agent.getByText("Send them an opt-in request?").waitFor();
  await agent.getByRole("button", { name: "Confirm" }).click();
  await agent.getByText("Waiting for Ada").waitFor();
  await screenshots(agent, "02-contact-opt-in-waiting");
  await markNoReload(agent);

  await phone.getByText("would like to send you messages on WhatsApp").waitFor({ timeout: 20_000 });
  await agent.waitForTimeout(500);
  assert.equal(await agent.locator("[data-consent=granted]").count(), 0, "nothing before she taps");
  // The buttons read Yes and No (their payloads, OPTIN_YES and OPTIN_NO, are never shown).
  await phone.getByRole("button", { name: "No", exact: true }).waitFor();
  await phone.getByRole("button", { name: "Yes", exact: true }).click();
  await phone.locator("#phone-history .msg-out .body", { hasText: /^Yes$/ }).waitFor({ timeout: 20_000 });
  assert.equal(await phone.getByText("OPTIN_", { exact: false }).count(), 0, "no payload on the phone");
  await agent.locator("[data-consent=granted]").waitFor({ timeout: 30_000 });
  await assertNotReloaded(agent);
  await screenshots(agent, "04-contact-opted-in");
  await screenshots(phone, "05-phone-opted-in");
});

test("text both ways, live, with delivery ticks; a picture from the phone", async () => {
  await agent.getByRole("link", { name: "Write on WhatsApp" }).click();
  await agent.waitForURL(/\/messages\//);
  await agent.getByText("Conversation window open").waitFor();
  // Ada's tap on Yes shows as the button's text, not its payload.
  await agent.locator(".msg-in", { hasText: /^Yes/ }).first().waitFor();
  assert.equal(await agent.getByText("OPTIN_", { exact: false }).count(), 0, "no payload in the thread");
  await agent.getByRole("textbox", { name: "Message" }).fill("Hello Ada, your new card is ready.");
  await agent.getByRole("button", { name: "Send", exact: true }).click();
  const sent = agent.locator(".msg-out", { hasText: "your new card is ready" });
  await sent.waitFor();
  // The simulator delivers and reads it; the ticks follow live.
  await agent.locator(".msg-out[data-status=read]", { hasText: "your new card is ready" }).waitFor({ timeout: 30_000 });
  await phone.getByText("Hello Ada, your new card is ready.").waitFor({ timeout: 20_000 });

  await markNoReload(agent);
  await phone.getByLabel("Reply").fill("Thank you! <script>window.__pwned = 1</script>");
  await phone.getByRole("button", { name: "Send", exact: true }).click();
  await agent.locator(".msg-in", { hasText: "Thank you!" }).waitFor({ timeout: 30_000 });
  await assertNotReloaded(agent);
  assert.equal(await agent.evaluate(() => window.__pwned), undefined, "a script in a message never runs");
  await agent.getByText("<script>window.__pwned = 1</script>").waitFor();

  await phone.getByLabel(/Send a picture/).setInputFiles({ name: "cheque.png", mimeType: "image/png", buffer: TINY_PNG });
  await phone.getByRole("button", { name: "Send picture" }).click();
  await agent.locator(".msg-in .media").first().waitFor({ timeout: 30_000 });
  // openline fetches the picture from WhatsApp and shows it inline, live.
  await agent.locator(".msg-in img.media-img").first().waitFor({ timeout: 30_000 });
  await agent.waitForFunction(() => {
    const img = document.querySelector(".msg-in img.media-img");
    return img && img.complete && img.naturalWidth === 2;
  }, null, { timeout: 30_000 });

  // The agent sends a picture from the "+" menu; it reaches the phone with its caption.
  await agent.locator("details.plus > summary").click();
  await agent.getByLabel(/Choose a picture/).setInputFiles({ name: "statement.png", mimeType: "image/png", buffer: TINY_PNG });
  await agent.getByLabel("Caption (optional)").fill("Your statement, as a picture");
  await agent.getByRole("button", { name: "Send picture" }).click();
  await agent.locator(".msg-out img.media-img").first().waitFor({ timeout: 30_000 });
  await phone.getByText("Your statement, as a picture").waitFor({ timeout: 30_000 });
  // The phone shows the picture itself (served by the simulator to the phone), with alt text;
  // and the one it sent.
  const received = phone.locator(".msg-in", { hasText: "Your statement, as a picture" }).locator("img.media-img");
  await received.waitFor({ timeout: 30_000 });
  assert.equal(await received.getAttribute("alt"), "Picture: Your statement, as a picture");
  assert.match(await received.getAttribute("src"), /^\/sim\/phones\/%2B447700900001\/media\/[^/]+$/);
  await phone.waitForFunction(() => {
    const imgs = [...document.querySelectorAll("#phone-history img.media-img")];
    return imgs.length === 2 && imgs.every((img) => img.complete && img.naturalWidth === 2);
  }, null, { timeout: 30_000 });
  await screenshots(agent, "06-thread");
  await screenshots(phone, "07-phone-thread");
});

test("templates: the + menu offers approved ones, fills in parameters with a preview, sends", async () => {
  const admin = await apiClient(base, ADMIN);
  const created = await admin.post("/api/v1/templates", {
    name: "card_ready", language: "en", category: "utility",
    components: [{ type: "body", text: "Hello {{1}}, your card is ready at {{2}}." }],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const approve = await fetch(`${base}/sim/templates/${created.body.provider_template_id}/approve`, {
    method: "POST", headers: { "content-type": "application/json" }, body: "{}",
  });
  assert.equal(approve.status, 200);
  for (let i = 0; i < 100; i++) {
    const t = await admin.get(`/api/v1/templates/${created.body.id}`);
    if (t.body.status.state === "approved") { break; }
    await new Promise((r) => setTimeout(r, 100));
  }
  await agent.reload();
  await agent.locator("summary", { hasText: "+" }).click();
  await agent.locator("a[data-template=card_ready]").click();
  await agent.getByLabel("Value for {{1}}").fill("Ada");
  await agent.getByLabel("Value for {{2}}").fill("the Strand branch");
  // The preview follows the typing…
  await agent.getByTestId("template-preview").getByText("Hello Ada, your card is ready at the Strand branch.").waitFor();
  // …and the server renders the same preview.
  await agent.getByRole("button", { name: "Preview" }).click();
  await agent.waitForURL(/p2=the\+Strand\+branch/);
  await agent.getByTestId("template-preview").getByText("Hello Ada, your card is ready at the Strand branch.").waitFor();
  await screenshots(agent, "08-template-preview");
  await agent.getByRole("button", { name: "Send template" }).click();
  await agent.locator(".msg-out", { hasText: "your card is ready at the Strand branch" }).waitFor();
  await phone.getByText("your card is ready at the Strand branch").waitFor({ timeout: 20_000 });
});

test("the 24-hour window closes: the banner says so, a template from the + menu goes, free text waits for the contact", async () => {
  // Ada wrote in the test before: the window is open and the banner counts down.
  const thread = new URL(agent.url()).pathname;
  assert.match(thread, /^\/messages\/[^/]+$/);
  await agent.goto(`${base}${thread}`);
  await agent.getByText("Conversation window open").waitFor();
  const minutesLeft = async (page) => {
    const text = await page.locator("[data-countdown]").innerText();
    const m = text.match(/^(\d+) h (\d\d) min$/);
    assert.ok(m, text);
    return Number(m[1]) * 60 + Number(m[2]);
  };
  const before = await minutesLeft(agent);
  assert.ok(before > 23 * 60 && before <= 24 * 60, `Ada wrote a moment ago: ${before} min left`);
  const threeHoursLess = async (page, why) => {
    const left = await minutesLeft(page);
    assert.ok(Math.abs(before - 180 - left) <= 2, `${why}: ${left} min left, ${before} before`);
  };

  // The countdown counts by the server's clock, not the browser's: three hours pass on the demo
  // clock, and a browser whose own clock is two days behind (its timers running) shows 3 h less.
  const advance = async (hours) => {
    const moved = await fetch(`${base}/sim/clock/advance`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ hours }),
    });
    assert.equal(moved.status, 200, await moved.text());
  };
  await advance(3);
  const skewedContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await skewedContext.clock.install({ time: Date.now() - 2 * 24 * 3_600_000 });
  const skewed = await skewedContext.newPage();
  await signIn(skewed, base, AGENT);
  await skewed.goto(`${base}${thread}`);
  await skewed.getByText("Conversation window open").waitFor();
  await threeHoursLess(skewed, "the script's first tick counts from the server's now");
  await skewed.clock.runFor(61_000); // the 30-second ticks, on the browser's clock
  await threeHoursLess(skewed, "and so do the next ones");
  await skewedContext.close();
  await agent.reload();
  await threeHoursLess(agent, "the agent's own page, reloaded");

  // A day and an hour in all pass (the demo's clock; production has no such route).
  await advance(22);
  // The 12-hour session ended with the day: sign in again.
  await agent.goto(`${base}${thread}`);
  assert.match(agent.url(), /\/login\?next=/);
  await signIn(agent, base, AGENT);
  await agent.goto(`${base}${thread}`);

  // The composer says the window has closed and opens the + menu on the templates.
  const banner = agent.locator("[data-code=window_closed]");
  await banner.getByText("Send a template to restart the conversation").waitFor();
  assert.match(await banner.innerText(), /^24 hours have passed since Ada/);
  assert.equal(await agent.locator("[data-countdown]").count(), 0, "no countdown once closed");
  await agent.locator("details.plus[open] a[data-template=card_ready]").waitFor();
  await screenshots(agent, "14-window-closed-templates");

  // An approved template from the + menu goes (WhatsApp allows templates outside the window).
  await agent.locator("a[data-template=card_ready]").click();
  await agent.getByLabel("Value for {{1}}").fill("Ada");
  await agent.getByLabel("Value for {{2}}").fill("the City branch");
  await agent.getByRole("button", { name: "Send template" }).click();
  await agent.locator(".msg-out[data-status=read]", { hasText: "your card is ready at the City branch" })
    .waitFor({ timeout: 30_000 });
  await phone.getByText("your card is ready at the City branch").waitFor({ timeout: 20_000 });

  // A template does not re-open the window (only Ada can): free text is held, with the reason,
  // and not handed to WhatsApp…
  await banner.waitFor();
  await agent.getByRole("textbox", { name: "Message" }).fill("Are you free on Thursday at 10?");
  await agent.getByRole("button", { name: "Send", exact: true }).click();
  const held = agent.locator(".msg-out[data-status=queued]", { hasText: "Are you free on Thursday" });
  await held.waitFor();
  await held.getByText("send a template to restart the conversation").waitFor();
  await agent.locator("details.plus > summary").click(); // close the + menu to show the thread
  await screenshots(agent, "15-window-closed-held");
  assert.equal(await phone.getByText("Are you free on Thursday at 10?").count(), 0, "not sent");

  // …until Ada writes again; then it goes, live.
  await markNoReload(agent);
  await phone.getByLabel("Reply").fill("Hi! Yes, Thursday works.");
  await phone.getByRole("button", { name: "Send", exact: true }).click();
  await agent.locator(".msg-out[data-status=read]", { hasText: "Are you free on Thursday" }).waitFor({ timeout: 30_000 });
  await phone.getByText("Are you free on Thursday at 10?").waitFor({ timeout: 20_000 });
  await agent.getByText("Conversation window open").waitFor();
  await assertNotReloaded(agent);
});

test("opting out disables the composer, live", async () => {
  await markNoReload(agent);
  await phone.getByLabel("Reply").fill("STOP");
  await phone.getByRole("button", { name: "Send", exact: true }).click();
  await agent.getByText("declined or opted out of WhatsApp messages").waitFor({ timeout: 30_000 });
  await assertNotReloaded(agent);
  assert.equal(await agent.getByRole("textbox", { name: "Message" }).isDisabled(), true, "the composer is disabled");
  await screenshots(agent, "09-opted-out");
});

test("Dan declines the opt-in: the agent is told", async () => {
  const dan = await contactId(DAN);
  await agent.goto(`${base}/contacts/${dan}?confirm=opt-in`);
  await agent.getByRole("button", { name: "Confirm" }).click();
  await agent.locator("[data-consent=refused]").waitFor({ timeout: 30_000 });
});

test("Sam never answers: the agent sees the request waiting and when a new one is possible", async () => {
  const sam = await contactId("+447700900003");
  await agent.goto(`${base}/contacts/${sam}`);
  await agent.getByTestId("whatsapp-button").click();
  await agent.getByRole("button", { name: "Confirm" }).click();
  await agent.locator("[data-consent=pending]").waitFor();
  await agent.getByText("you can send a new request from").waitFor();
});

test("not on WhatsApp: the agent is offered SMS, and sends one", async () => {
  const nora = await contactId(NORA);
  await agent.goto(`${base}/contacts/${nora}`);
  await agent.getByTestId("whatsapp-button").click();
  await agent.getByRole("button", { name: "Confirm" }).click();
  try { await agent.getByText("is not a WhatsApp user. Send an SMS instead?").waitFor({ timeout: 30_000 }); }
  catch (e) { await agent.screenshot({ path: "/tmp/nora_fail.png", fullPage: true }); console.log("URL", agent.url());
    const api = await apiClient(base, AGENT);
    console.log("CONSENT", JSON.stringify((await api.get(`/api/v1/contacts/${nora}/consent`)).body.consent));
    const convs = (await api.get("/api/v1/conversations")).body.items;
    for (const c of convs) { const q = await api.get(`/api/v1/conversations/${c.id}/messages`); for (const m of q.body.items) console.log("MSG", c.contact_name, m.direction, m.status, m.queue_reason, m.error_code, (m.body||"").slice(0,30)); }
    throw e; }
  await screenshots(agent, "10-not-on-whatsapp");
  await agent.getByRole("link", { name: "Yes", exact: true }).click();
  await agent.waitForURL(/channel=sms/);
  await agent.getByRole("textbox", { name: "Message" }).fill("Hello Nora, this is Demo Bank by SMS.");
  await agent.getByRole("button", { name: "Send", exact: true }).click();
  await agent.waitForURL(/\/messages\//);
  await agent.locator(".msg-out", { hasText: "this is Demo Bank by SMS" }).waitFor();
  await phone.goto(`${base}/phone/${encodeURIComponent(NORA)}`);
  await phone.getByText("Hello Nora, this is Demo Bank by SMS.").waitFor({ timeout: 20_000 });
  await agent.goto(`${base}/messages`);
  await agent.locator(".thread-row[data-channel=sms]").first().waitFor();
  await agent.locator(".thread-row[data-channel=whatsapp]").first().waitFor();
  await screenshots(agent, "11-messages");
  await agent.goto(`${base}/contacts`);
  await screenshots(agent, "12-contacts");
});

test("an agent of another organization cannot open the thread", async () => {
  await agent.goto(`${base}/messages`);
  const threadUrl = await agent.locator(".thread-row[data-channel=whatsapp]").first().getAttribute("href");
  server.admin(["create-user", "--org", "Other Bank", "--email", "eve@other.example", "--role", "agent"], "eve-password-123\n");
  const eveContext = await browser.newContext();
  const eve = await eveContext.newPage();
  await signIn(eve, base, "eve@other.example", "eve-password-123");
  const res = await eve.goto(`${base}${threadUrl}`);
  assert.equal(res.status(), 404);
  await eve.getByText("No such conversation, or you may not see it.").waitFor();
  await eve.goto(`${base}/messages`);
  assert.equal(await eve.locator(".thread-row").count(), 0, "nothing of Demo Bank is listed");
  await eveContext.close();
});

test("admin pages: organizations, users, senders, templates; switching WhatsApp off hides it", async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await signIn(page, base, ADMIN);
  await page.goto(`${base}/admin`);
  await page.getByRole("cell", { name: "card_ready" }).waitFor();
  await page.getByText("inherited").first().waitFor();
  await screenshots(page, "13-admin");
  // Switch WhatsApp off for the agents' organization: the green icon disappears for them.
  const select = page.getByLabel("WhatsApp for Demo Bank Private Clients");
  await select.selectOption("off");
  await page.locator("form", { has: select }).getByRole("button", { name: "Save" }).click();
  await page.waitForURL(`${base}/admin`);
  const ada = await contactId(ADA);
  await agent.goto(`${base}/contacts/${ada}`);
  assert.equal(await agent.getByTestId("whatsapp-button").count(), 0, "no WhatsApp icon");
  await page.getByLabel("WhatsApp for Demo Bank Private Clients").selectOption("inherit");
  await page.locator("form", { has: page.getByLabel("WhatsApp for Demo Bank Private Clients") })
    .getByRole("button", { name: "Save" }).click();
  await page.waitForURL(`${base}/admin`);
  await agent.reload();
  assert.equal(await agent.getByTestId("whatsapp-button").count(), 1, "back when inherited again");
  await ctx.close();
  const res = await agent.goto(`${base}/admin`);
  assert.equal(res.status(), 403, "agents may not");
});

test("compliance: a supervisor places a legal hold and downloads an EML export; a colleague is added from the thread's panel", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const sue = await ctx.newPage();
  await signIn(sue, base, "supervisor@demo.openline.dev");
  await sue.getByRole("link", { name: "Compliance" }).click();
  await sue.waitForURL(`${base}/compliance`);
  await sue.getByText(/Chain intact through entry \d+/).first().waitFor();

  // A hold on the agents' organization, with the matter's reference.
  await sue.getByLabel("What to hold").selectOption({ label: "Organization Demo Bank Private Clients" });
  await sue.getByLabel("Reason (a matter or case reference)").fill("Matter 2026-114");
  await sue.getByRole("button", { name: "Place hold" }).click();
  const hold = sue.locator("#holds tr", { hasText: "Matter 2026-114" });
  await hold.getByText("active").waitFor();
  await hold.getByText("supervisor@demo.openline.dev").waitFor();
  await screenshots(sue, "16-compliance");

  // The organization's archive as EML (an mbox): Ada's conversation is in it.
  await sue.getByLabel("Organization", { exact: true }).selectOption({ label: "Demo Bank Private Clients" });
  await sue.getByLabel("EML (mbox)").check();
  const [download] = await Promise.all([
    sue.waitForEvent("download"),
    sue.getByRole("button", { name: "Download export" }).click(),
  ]);
  assert.match(download.suggestedFilename(), /\.mbox$/);
  const eml = await readFile(await download.path(), "utf8");
  assert.ok(eml.startsWith("From "), "an mbox");
  assert.match(eml, /your new card is ready/);

  // Released again: the row says who released it.
  await hold.getByRole("button", { name: /Release the hold/ }).click();
  await sue.locator("#holds tr", { hasText: "Matter 2026-114" }).getByText("supervisor@demo.openline.dev").nth(1).waitFor();
  await ctx.close();

  // The agent adds Bea to Ada's thread from the participants panel.
  await agent.goto(`${base}/messages`);
  await agent.locator(".thread-row[data-channel=whatsapp]").first().click();
  await agent.waitForURL(/\/messages\/[^/]+$/);
  const panel = agent.locator("#participants");
  await panel.getByLabel("Add a colleague").selectOption({ label: "Bea Agent (agent2@demo.openline.dev)" });
  await panel.getByRole("button", { name: "Add", exact: true }).click();
  await agent.locator("#participants li", { hasText: "Bea Agent" }).waitFor();
  await screenshots(agent, "17-participants");
});

test("keyboard: the sign-in form works without a mouse", async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${base}/login`);
  await page.waitForFunction(() => document.activeElement && document.activeElement.id === "email");
  await page.keyboard.type(AGENT); // the e-mail field has focus
  await page.keyboard.press("Tab");
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press("Enter");
  await page.waitForURL(`${base}/messages`);
  await ctx.close();
});
