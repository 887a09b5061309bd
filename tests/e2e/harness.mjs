// What the browser tests share: a daemon with the demo data on a free
// loopback port and a fresh data directory, Debian's chromium, and polling.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export async function waitFor(fn, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/* Starts the daemon and chromium; returns {base, data, cli(args), browser, stop()}.
 * opts.ini: more configuration text appended to the file. */
export async function start(opts = {}) {
  const bin = process.env.SB_BINARY;
  assert.ok(bin, 'SB_BINARY must name the switchboard binary');
  const dir = mkdtempSync(join(tmpdir(), 'sb-e2e-'));
  const data = join(dir, 'data');
  const ini = join(dir, 'sb.ini');
  // SB_WEB_ROOT serves another build of the workspace than the compiled-in one.
  const web = process.env.SB_WEB_ROOT ? `web_root = ${process.env.SB_WEB_ROOT}\n` : '';
  writeFileSync(ini, `[server]\nlisten = 127.0.0.1:0\ndata_dir = ${data}\n${web}[log]\nlevel = warn\n[demo]\nseed = true\n${opts.ini ?? ''}`);
  const proc = spawn(bin, ['serve', '--config', ini], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  const m = await waitFor(() => out.match(/switchboard listening on (http:\/\/\S+)/), 30000);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    base: m[1],
    data,
    browser,
    cli: (args) => execFileSync(bin, [...args, '--data', data]).toString().trim(),
    async stop() {
      await browser.close();
      proc.kill('SIGTERM');
      const code = await new Promise((r) => proc.on('exit', (c) => r(c)));
      rmSync(dir, { recursive: true, force: true });
      assert.equal(code, 0, 'the daemon must stop cleanly');
    },
  };
}

/* The REST API with an API token: {status, json}. JSON answers are parsed,
 * anything else (CSV) comes back as text. */
export async function apiCall(base, token, method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const json = res.headers.get('content-type')?.startsWith('application/json') && text ? JSON.parse(text) : text;
  return { status: res.status, json };
}

/* A customer's message through API channel `channel`, signed with its
 * secret; must be accepted (200). Returns the answer's JSON. */
export async function signedInbound(base, secret, payload, channel = 1) {
  const raw = JSON.stringify(payload);
  const sig = 'sha256=' + createHmac('sha256', secret).update(raw).digest('hex');
  const res = await fetch(`${base}/api/v1/channels/${channel}/inbound`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Switchboard-Signature': sig },
    body: raw,
  });
  assert.equal(res.status, 200);
  return res.json();
}

/* Signs in through the workspace's form in a new page of `ctx`; resolves
 * once the workspace is live. The page's script errors collect in
 * page.errors (tests assert it stays empty). */
export async function signIn(base, ctx, email, password, lang = 'ru') {
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.goto(base + '/');
  await page.getByLabel(lang === 'ru' ? 'Эл. почта' : 'Email').fill(email);
  await page.getByLabel(lang === 'ru' ? 'Пароль' : 'Password').fill(password);
  await page.getByRole('button', { name: lang === 'ru' ? 'Войти' : 'Sign in' }).click();
  await page.getByText(lang === 'ru' ? 'в реальном времени' : 'live', { exact: true }).waitFor();
  return page;
}
