// workspace.mjs - how fast the browser workspace opens with TICKETS (default
// 10,000) tickets in the store, in Debian's headless chromium on loopback.
//
//   1. a daemon with the demo data on a fresh data dir; bench_ingest puts
//      TICKETS messages from as many new contacts (TICKETS open tickets);
//   2. an agent signs in once (session cookie), then RUNS times: a fresh page
//      load of / until the inbox's first rows are on screen ("first load":
//      navigation start → the first ticket row rendered), and a switch to
//      the "all" view until its rows are on screen;
//   3. the list is scrolled through SCROLL tickets (pages fetched as it goes)
//      and the number of rows in the DOM is read: the list is virtualised.
// Prints the median and the worst of each timing, bytes of the bundle, and
// a RESULT line. Usage: BUILD_DIR=build TICKETS=10000 node bench/workspace.mjs
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { start } from '../tests/e2e/harness.mjs';

const BUILD = resolve(process.env.BUILD_DIR || 'build');
const TICKETS = Number(process.env.TICKETS || 10000);
const RUNS = Number(process.env.RUNS || 7);
const SCROLL = Number(process.env.SCROLL || 2000);
process.env.SB_BINARY ||= `${BUILD}/switchboard`;

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
// no rate limits: the fill is one client sending as fast as it can
const env = await start({ ini: '[limits]\nrate_per_ip = 0\nrate_per_token = 0\n' });
try {
  const secret = env.cli(['channel', 'secret', '1']);
  const t0 = Date.now();
  execFileSync(`${BUILD}/bench/bench_ingest`, ['--url', env.base, '--secret', secret, '--requests', String(TICKETS),
    '--new-ratio', '1', '--connections', '32', '--quiet'], { stdio: 'inherit' });
  console.log(`filled ${TICKETS} tickets in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const ctx = await env.browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(env.base + '/');
  await page.getByLabel('Email').fill('admin@demo.switchboard');
  await page.getByLabel('Password').fill('demo-admin-1');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Unassigned' }).waitFor();

  const first = [], all = [];
  let bytes = 0;
  for (let i = 0; i < RUNS; i++) {
    const p = await ctx.newPage();
    let got = 0;
    p.on('response', async (r) => {
      if (r.url().includes('/assets/') || r.url().endsWith('/')) got += (await r.body().catch(() => Buffer.alloc(0))).length;
    });
    const t = Date.now();
    await p.goto(env.base + '/');
    await p.getByRole('button', { name: 'Unassigned' }).click();
    await p.locator('.tickets .ticket').first().waitFor();
    first.push(Date.now() - t);
    const s = Date.now();
    await p.getByRole('button', { name: 'All' }).click();
    await p.waitForFunction(() => document.querySelector('.views .active')?.textContent === 'All' &&
      document.querySelectorAll('.tickets .ticket').length > 0);
    all.push(Date.now() - s);
    bytes = got;
    await p.close();
  }

  // Scroll through SCROLL tickets: pages come as needed, the DOM stays small.
  const list = page.locator('.tickets');
  await page.getByRole('button', { name: 'All' }).click();
  await page.locator('.tickets .ticket').first().waitFor();
  const s = Date.now();
  let maxRows = 0;
  for (;;) {
    const state = await list.evaluate((el) => {
      el.scrollTop = el.scrollHeight;
      el.dispatchEvent(new Event('scroll'));
      return { loaded: Number(el.dataset.count), rows: el.querySelectorAll('.ticket').length };
    });
    maxRows = Math.max(maxRows, state.rows);
    if (state.loaded >= SCROLL || Date.now() - s > 60000) break;
    await page.waitForTimeout(20);
  }
  const scrolled = await list.evaluate((el) => Number(el.dataset.count));
  const scrollMs = Date.now() - s;
  const heap = await page.evaluate(() => performance.memory?.usedJSHeapSize ?? 0);

  console.log(`tickets in store     ${TICKETS}`);
  console.log(`first load (ms)      median ${median(first)}  worst ${Math.max(...first)}  (${RUNS} runs: ${first.join(' ')})`);
  console.log(`switch to "all" (ms) median ${median(all)}  worst ${Math.max(...all)}`);
  console.log(`bundle + page        ${(bytes / 1024).toFixed(1)} KiB (uncompressed)`);
  console.log(`scrolled             ${scrolled} tickets loaded in ${scrollMs} ms; at most ${maxRows} rows in the DOM`);
  console.log(`JS heap              ${(heap / 1048576).toFixed(1)} MiB after scrolling`);
  console.log(`RESULT workspace tickets=${TICKETS} first_load_median_ms=${median(first)} first_load_max_ms=${Math.max(...first)} ` +
    `switch_all_median_ms=${median(all)} scrolled=${scrolled} max_dom_rows=${maxRows} bundle_kib=${(bytes / 1024).toFixed(1)}`);
  await ctx.close();
} finally {
  await env.stop();
}
