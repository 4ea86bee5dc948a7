// Drives ordo's web console in headless Chromium for e2e/operators_test.go.
// It reads one command per line on stdin and answers each with one JSON
// line on stdout: {"ok": true, ...} or {"ok": false, "error": "..."}.
//
//   open                       load the console with the token, wait for data
//   figures                    what the page shows, after a fresh refresh
//   filter k=v ...             fill the dead-letter filters and apply them
//   replay <messageId>         click the row's Replay, read the confirmation, confirm
//   screenshot <path>          full-page PNG
//   quit
//
// Settings: CONSOLE_URL, CONSOLE_TOKEN, CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import readline from "node:readline";

const url = process.env.CONSOLE_URL;
const token = process.env.CONSOLE_TOKEN;
const profile = mkdtempSync(join(tmpdir(), "ordo-console-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"],
  viewport: { width: 1400, height: 1000 },
});
const page = context.pages()[0] || (await context.newPage());
const consoleErrors = [];
page.on("pageerror", (e) => consoleErrors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });

async function fresh(attr) {
  const before = await page.evaluate((a) => document.body.dataset[a] || "", attr);
  await page.waitForFunction(([a, b]) => (document.body.dataset[a] || "") !== b, [attr, before], { timeout: 15000 });
}

const commands = {
  async open() {
    await page.goto(url + "#token=" + encodeURIComponent(token));
    await page.waitForFunction(() => document.body.dataset.overviewAt && document.body.dataset.lettersAt, null, { timeout: 15000 });
    return { title: await page.title(), hashGone: !page.url().includes("token=") };
  },
  async figures() {
    await fresh("overviewAt");
    await fresh("lettersAt");
    return page.evaluate(() => {
      const cell = (row, f) => row.querySelector(`[data-field="${f}"]`)?.textContent.trim();
      const int = (s) => (s === undefined || s === "–" ? -1 : Number(s.replace(/,/g, "")));
      return {
        summary: document.getElementById("summary").textContent,
        nodes: [...document.querySelectorAll("#nodes tr[data-node]")].map((r) => ({
          name: r.dataset.node, state: cell(r, "state"), shards: int(cell(r, "shards")),
          pending: int(cell(r, "pending")), deadLetters: int(cell(r, "deadLetters")) })),
        shards: [...document.querySelectorAll("#shards tr[data-shard]")].map((r) => ({
          shard: Number(r.dataset.shard), node: cell(r, "node"), pending: int(cell(r, "pending")),
          deadLetters: int(cell(r, "deadLetters")), holder: cell(r, "holder") })),
        workers: [...document.querySelectorAll("#workers tr[data-worker]")].map((r) => ({
          id: r.dataset.worker, live: cell(r, "live"), shards: int(cell(r, "shards")) })),
        moves: document.querySelectorAll("#moves [data-move]").length,
        letters: [...document.querySelectorAll("#dead-letters tr[data-message-id]")].map((r) => ({
          messageId: r.dataset.messageId, node: r.dataset.node, status: cell(r, "status"), key: cell(r, "key") })),
        dlTotal: document.getElementById("dl-total").textContent,
        error: document.getElementById("error").hidden ? "" : document.getElementById("error").textContent,
      };
    });
  },
  async filter(...pairs) {
    await page.click("#clear");
    for (const p of pairs) {
      const [k, v] = p.split("=");
      await page.fill(`#filters [name="${k}"]`, v);
    }
    const before = await page.evaluate(() => document.body.dataset.lettersAt);
    await page.click('#filters button[type="submit"]');
    await page.waitForFunction((b) => document.body.dataset.lettersAt !== b, before, { timeout: 15000 });
    return {};
  },
  async replay(messageId) {
    await page.click(`#dead-letters tr[data-message-id="${messageId}"] [data-testid="replay"]`);
    await page.waitForSelector("#confirm[open]", { timeout: 15000 });
    const confirm = await page.textContent("#confirm-text");
    await page.click("#confirm-ok");
    await page.waitForSelector("#toast:not([hidden])", { timeout: 30000 });
    return { confirm, toast: await page.textContent("#toast") };
  },
  async screenshot(path) {
    await page.screenshot({ path, fullPage: true });
    return { path };
  },
};

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const [cmd, ...args] = line.trim().split(/\s+/);
  if (!cmd) continue;
  if (cmd === "quit") break;
  try {
    if (!commands[cmd]) throw new Error("unknown command " + cmd);
    const out = await commands[cmd](...args);
    console.log(JSON.stringify({ ok: true, ...out, pageErrors: consoleErrors.splice(0) }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: String(e && e.stack || e), pageErrors: consoleErrors.splice(0) }));
  }
}
await context.close();
rmSync(profile, { recursive: true, force: true });
