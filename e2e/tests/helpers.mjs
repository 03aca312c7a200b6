// Shared by the browser tests: start a real `openline serve --demo` on a free port with a fresh
// data directory, launch Debian's Chromium through playwright-core, sign in, take screenshots.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, "..", "..");
// The binary `cargo build -p openline` made: OPENLINE_BIN, else under CARGO_TARGET_DIR when set (as
// cargo does), else the workspace's target/.
export const BIN =
  process.env.OPENLINE_BIN ||
  path.join(process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, "target"), "debug", "openline");
export const SHOTS = path.join(ROOT, "e2e", "screenshots");
export const PASSWORD = "openline-demo";
export const AGENT = "agent1@demo.openline.dev";
export const ADMIN = "admin@demo.openline.dev";
export const ADA = "+447700900001";
export const DAN = "+447700900002";
export const NORA = "+447700900004";

/** Starts openline with the demo data and the simulator; resolves once it prints its URL. */
export async function startServer() {
  const dir = mkdtempSync(path.join(tmpdir(), "openline-e2e-"));
  const proc = spawn(BIN, ["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir", dir], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, OPENLINE_LOG: process.env.OPENLINE_LOG || "warn" },
  });
  let output = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`openline did not start in time:\n${output}`)), 60_000);
    proc.stdout.on("data", (d) => {
      output += d;
      const m = output.match(/openline is running at (\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.stderr.on("data", (d) => { output += d; if (process.env.E2E_LOG) { process.stderr.write(d); } });
    proc.on("exit", (code) => { clearTimeout(timer); reject(new Error(`openline exited (${code}):\n${output}`)); });
  });
  return {
    url,
    dir,
    /** Runs `openline admin …` against the same database. */
    admin(args, stdin) {
      const r = spawnSync(BIN, ["admin", ...args, "--data-dir", dir], { input: stdin ?? "", encoding: "utf8" });
      if (r.status !== 0) { throw new Error(`openline admin ${args.join(" ")} failed: ${r.stderr}`); }
      return r.stdout;
    },
    async stop() {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

/** Signs in through the form and waits for the inbox. */
export async function signIn(page, base, email, password = PASSWORD) {
  await page.goto(`${base}/login`);
  await page.getByLabel("E-mail address").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/messages`);
}

/** A small JSON client for the API (setting up what the browser then uses). */
export async function apiClient(base, email, password = PASSWORD) {
  const res = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (!res.ok) { throw new Error(`sign-in failed: ${res.status}`); }
  const cookie = res.headers.get("set-cookie").split(";")[0];
  const call = async (method, p, body) => {
    const r = await fetch(`${base}${p}`, {
      method,
      headers: { cookie, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };
  return { get: (p) => call("GET", p), post: (p, b) => call("POST", p, b ?? {}) };
}

/** Screenshots at a desktop width and at 375 px (a phone), into e2e/screenshots/. */
export async function screenshots(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  const original = page.viewportSize();
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: path.join(SHOTS, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize({ width: 375, height: 812 });
  await page.screenshot({ path: path.join(SHOTS, `${name}-phone.png`), fullPage: true });
  if (original) { await page.setViewportSize(original); }
}

/** A 2×2 PNG, for sending a picture. */
export const TINY_PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAYAAABytg0kAAAAFklEQVR42mNk+M9Qz0AEYBxVSF+FAP5FDvcfRYWgAAAAAElFTkSuQmCC",
  "base64",
);
