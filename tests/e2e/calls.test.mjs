// The supervisors' call log in the workspace: rows of the daemon's `call`
// table (written here into its SQLite file with Debian's sqlite3, as the
// voice thread would) appear with their status, IVR path, queue and times;
// the status filter asks the API again; RU/EN; an agent has no Calls.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { signIn, start } from './harness.mjs';

const SHOTS = process.env.SB_SCREENSHOTS;
let env;

before(async () => {
  env = await start();
  const db = join(env.data, 'switchboard.db');
  const t0 = Date.parse('2026-11-20T09:00:00Z');
  const row = (from, status, by, path, team, offered, answered, ended) =>
    `INSERT INTO call (direction, from_number, to_number, did, source, status, hangup_by, hangup_cause, ivr_path, ` +
    `queue_team_id, offered_at, answered_at, ended_at, created_at) VALUES ('in', '${from}', '100', '100', ` +
    `'udp:127.0.0.1:5062', '${status}', '${by}', 'normal', '${path}', ${team}, ${t0 + offered}, ` +
    `${answered === null ? 'NULL' : t0 + answered}, ${t0 + ended}, ${t0 + ended});`;
  execFileSync('sqlite3', [db, 'PRAGMA busy_timeout = 5000;' +
    row('79991234567', 'abandoned', 'caller', '1', 1, 0, 2000, 47000) +
    row('79997654321', 'missed', 'caller', '', 'NULL', 60000, null, 75000) +
    row('77011234567', 'abandoned', 'caller', '9>t', 2, 120000, 121000, 140000)]);
});

after(async () => {
  await env?.stop();
});

test('a supervisor reads the call log and filters it', async () => {
  const ctx = await env.browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 800 } });
  const page = await signIn(env.base, ctx, 'boris@demo.switchboard', 'demo-boris-1', 'ru');
  await page.getByRole('button', { name: 'Звонки' }).click();
  const rows = page.locator('.calls-table tbody tr');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 3);
  // newest first: the Kazakh number that pressed 9 and then nothing
  const first = rows.nth(0);
  assert.equal(await first.locator('td').nth(1).textContent(), '77011234567');
  assert.equal(await first.locator('td').nth(3).textContent(), 'брошен');
  assert.equal(await first.locator('td').nth(4).textContent(), '9 › (тишина)');
  assert.equal(await first.locator('td').nth(5).textContent(), 'очередь: Support');
  assert.equal(await first.locator('td').nth(6).textContent(), '1 с');
  assert.equal(await first.locator('td').nth(7).textContent(), '19 с');
  assert.equal(await first.locator('td').nth(8).textContent(), 'клиент');
  const third = rows.nth(2);
  assert.equal(await third.locator('td').nth(5).textContent(), 'очередь: Sales');
  assert.equal(await third.locator('td').nth(7).textContent(), '45 с');
  // missed calls only: the API is asked again with the filter
  await page.getByLabel('Статус').nth(1).selectOption('missed');
  await page.waitForFunction(() => document.querySelectorAll('.calls-table tbody tr').length === 1);
  assert.equal(await rows.nth(0).locator('td').nth(1).textContent(), '79997654321');
  assert.equal(await rows.nth(0).locator('td').nth(7).textContent(), '—');
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'calls.png') });
  // English
  await page.getByLabel('Язык').selectOption('en');
  await page.getByRole('columnheader', { name: 'Menu path' }).waitFor();
  assert.equal(await rows.nth(0).locator('td').nth(3).textContent(), 'missed');
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('an agent has no call log', async () => {
  const ctx = await env.browser.newContext({ locale: 'ru-RU' });
  const page = await signIn(env.base, ctx, 'anna@demo.switchboard', 'demo-anna-1', 'ru');
  await page.getByRole('button', { name: 'Обращения' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Звонки' }).count(), 0);
  await ctx.close();
});
