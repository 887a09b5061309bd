// The supervisors' call log in the workspace: rows of the daemon's `call`
// table (written here into its SQLite file with Debian's sqlite3, as the
// voice thread would) appear with their status, IVR path, queue and times;
// the status filter asks the API again; RU/EN; an agent has no Calls.
// The missed calls not yet called back: a customer's two missed calls on
// one call-back task are one row with two attempts and a link that opens
// the ticket, whose message plays the recording; the call log plays a
// call's recording (the browser loads it through Range requests). A
// website call-back request no missed call accounts for is a row of the
// missed calls too, marked as such and counted in the totals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiCall, signIn, signedInbound, start, waitFor } from './harness.mjs';

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

/* A second of silence as 8 kHz 16-bit mono PCM WAV. */
function wav() {
  const samples = 8000, b = Buffer.alloc(44 + samples * 2);
  b.write('RIFF', 0);
  b.writeUInt32LE(36 + samples * 2, 4);
  b.write('WAVEfmt ', 8);
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20); // PCM
  b.writeUInt16LE(1, 22); // mono
  b.writeUInt32LE(8000, 24);
  b.writeUInt32LE(16000, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36);
  b.writeUInt32LE(samples * 2, 40);
  return b;
}

test('missed calls not called back, their ticket and recordings', async () => {
  const db = join(env.data, 'switchboard.db');
  const token = env.cli(['token', 'create', '--agent', 'admin@demo.switchboard']).split('\n').pop().trim();
  const secret = env.cli(['channel', 'secret', '1']);
  // a customer with a ticket (#1) and a call-back task on it, as a missed call leaves them
  const ing = await signedInbound(env.base, secret, { external_id: 'e2e-call-1', from: { id: 'c1', phone: '+79990001122', name: 'Ольга' }, text: 'Перезвоните мне' });
  const due = new Date(Date.now() + 15 * 60000).toISOString();
  const task = await apiCall(env.base, token, 'POST', '/api/v1/tasks', { title: 'Перезвонить +79990001122', kind: 'call_back', ticket_number: ing.ticket_number, due_at: due });
  assert.equal(task.status, 201);
  mkdirSync(join(env.data, 'recordings'), { recursive: true });
  writeFileSync(join(env.data, 'recordings', 'r1.wav'), wav());
  const t0 = Date.parse('2026-11-21T10:00:00Z');
  const call = (status, offered, ended, extra) =>
    `INSERT INTO call (direction, from_number, to_number, did, status, hangup_by, ivr_path, queue_team_id, ` +
    `offered_at, ended_at, created_at, contact_id, ticket_id, callback_task_id, recording, recording_ms) VALUES ` +
    `('in', '79990001122', '100', '100', '${status}', 'caller', '1', 1, ${t0 + offered}, ${t0 + ended}, ` +
    `${t0 + ended}, ${ing.contact_id}, ${ing.ticket_id}, ${extra});`;
  execFileSync('sqlite3', [db, 'PRAGMA busy_timeout = 5000;' +
    call('abandoned', 0, 35000, `${task.json.task.id}, NULL, NULL`) +
    call('missed', 600000, 612000, `${task.json.task.id}, NULL, NULL`) +
    call('answered', 900000, 960000, "NULL, 'recordings/r1.wav', 1000") +
    // the ticket's message carries the recording, as a voicemail's would
    `UPDATE message SET attachments = '[{"name":"call-6.wav","mime":"audio/wav","url":"/api/v1/calls/6/recording"}]' ` +
    `WHERE id = ${ing.message_id};`]);

  const ctx = await env.browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 800 } });
  const page = await signIn(env.base, ctx, 'boris@demo.switchboard', 'demo-boris-1', 'ru');
  await page.getByRole('button', { name: 'Звонки' }).click();
  // the call log plays the recording of the answered call (id 6)
  const player = page.locator('tr[data-call="6"] audio');
  await player.waitFor();
  assert.equal(await player.getAttribute('src'), '/api/v1/calls/6/recording');
  assert.equal(await page.locator('tr[data-call="5"] audio').count(), 0);
  const state = await player.evaluate((el) => new Promise((resolve) => {
    el.addEventListener('loadedmetadata', () => resolve({ ok: true, duration: el.duration }));
    el.addEventListener('error', () => resolve({ ok: false, code: el.error?.code }));
    el.load();
  }));
  assert.deepEqual(state, { ok: true, duration: 1 });
  const part = await page.evaluate(async () => {
    const r = await fetch('/api/v1/calls/6/recording', { headers: { Range: 'bytes=0-43' } });
    return [r.status, r.headers.get('content-range'), (await r.arrayBuffer()).byteLength];
  });
  assert.deepEqual(part, [206, 'bytes 0-43/16044', 44]);
  assert.equal(await page.locator('tr[data-call="6"] a.ticket-link').textContent(), `#${ing.ticket_number}`);

  // the missed calls: one row for the customer, two attempts, the task's due time
  await page.getByRole('tab', { name: 'Пропущенные' }).click();
  const missed = page.locator('.missed-table tbody tr');
  await missed.first().waitFor();
  assert.equal(await missed.count(), 1);
  const cells = missed.nth(0).locator('td');
  assert.equal(await cells.nth(1).textContent(), 'Ольга 79990001122');
  assert.equal(await cells.nth(2).textContent(), `#${ing.ticket_number}`);
  assert.equal(await cells.nth(3).textContent(), 'Sales');
  assert.equal(await cells.nth(4).textContent(), '12 с');
  assert.equal(await cells.nth(5).textContent(), '2');
  assert.match(await cells.nth(6).textContent(), /^до /);
  const csv = await page.getByRole('link', { name: 'Скачать CSV' }).getAttribute('href');
  assert.equal(csv, '/api/v1/calls/missed?status=open&format=csv&lang=ru&delimiter=semicolon');
  // all: the calls of the first test, which have no task, too
  await page.getByLabel('Показать').selectOption('all');
  await page.waitForFunction(() => document.querySelectorAll('.missed-table tbody tr').length === 4);
  assert.equal(await page.locator('.missed-table tr.task-none').count(), 3);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'calls-missed.png') });
  // English
  await page.getByLabel('Язык').selectOption('en');
  await page.getByRole('tab', { name: 'Missed calls' }).waitFor();
  await page.getByRole('columnheader', { name: 'Attempts' }).waitFor();
  await page.getByLabel('Language').selectOption('ru');
  await page.getByRole('tab', { name: 'Пропущенные' }).waitFor();

  // the ticket link opens the ticket in the inbox, where its message plays the recording
  await page.locator('.missed-table tr.task-open a.ticket-link').click();
  const audio = page.locator('.attachments audio');
  await audio.waitFor();
  assert.equal(await audio.getAttribute('src'), '/api/v1/calls/6/recording');
  await waitFor(async () => (await page.evaluate(() => location.hash)) === `#/t/${ing.ticket_number}`);
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('queue figures: offered, answered, abandoned, ASA and service level per team', async () => {
  // a post-call rating, as the voice executor writes it for a queue that asks the caller
  execFileSync('sqlite3', [join(env.data, 'switchboard.db'), 'PRAGMA busy_timeout = 5000;' +
    "UPDATE call SET rating = 4 WHERE from_number = '79991234567' AND queue_team_id = 1;"]);
  const token = env.cli(['token', 'create', '--agent', 'boris@demo.switchboard']).split('\n').pop().trim();
  const from = new Date(Date.now() - 30 * 86400000).toISOString();
  const api = await apiCall(env.base, token, 'GET', `/api/v1/calls/queues?from=${encodeURIComponent(from)}`);
  assert.equal(api.status, 200);
  const sales = api.json.queues.find((q) => q.team_name === 'Sales');
  assert.ok(sales && sales.offered >= 1 && sales.abandoned >= 1, JSON.stringify(api.json));
  assert.equal(sales.rating_count, 1);
  assert.equal(sales.rating_average, 4);
  const ctx = await env.browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 800 } });
  const page = await signIn(env.base, ctx, 'boris@demo.switchboard', 'demo-boris-1', 'ru');
  await page.getByRole('button', { name: 'Звонки' }).click();
  await page.getByRole('tab', { name: 'Очереди' }).click();
  await page.getByLabel('За').selectOption('month');
  const row = page.locator('.queues-table tbody tr', { has: page.getByRole('rowheader', { name: 'Sales' }) });
  await row.waitFor();
  const cells = row.locator('td');
  assert.equal(await cells.nth(0).textContent(), String(sales.offered));
  assert.equal(await cells.nth(2).textContent(), String(sales.abandoned));
  assert.equal(await cells.nth(7).textContent(), `${String(Math.round(sales.abandonment_rate * 1000) / 10).replace('.', ',')} %`);
  assert.equal(await cells.nth(9).textContent(), '4 (1)'); // the average rating (how many rated)
  assert.equal(await page.locator('.queues-table tbody tr').count(), api.json.queues.length);
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('website call-back requests: those still to call, cancelling one, all of them', async () => {
  const db = join(env.data, 'switchboard.db');
  const now = Date.now();
  const req = (phone, name, status, attempts, result) =>
    `INSERT INTO callback_request (channel_id, phone, name, comment, language, team_id, status, attempts, ` +
    `max_attempts, retry_seconds, next_attempt_at, last_result, created_at, updated_at) VALUES (2, '${phone}', ` +
    `'${name}', 'по заказу 12', 'ru', 1, '${status}', ${attempts}, 3, 600, ${now + 600000}, ` +
    `${result ? `'${result}'` : 'NULL'}, ${now - 60000}, ${now - 60000});`;
  execFileSync('sqlite3', [db, 'PRAGMA busy_timeout = 5000;' +
    req('+79161234567', 'Анна', 'queued', 1, 'busy') + req('+79161110000', 'Пётр', 'done', 1, 'answered')]);
  const ctx = await env.browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 800 } });
  const page = await signIn(env.base, ctx, 'boris@demo.switchboard', 'demo-boris-1', 'ru');
  await page.getByRole('button', { name: 'Звонки' }).click();
  await page.getByRole('tab', { name: 'Заявки с сайта' }).click();
  const rows = page.locator('.requests-table tbody tr');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 1); // only the one still to call
  const cells = rows.nth(0).locator('td');
  assert.match(await cells.nth(0).textContent(), /Анна.*\+79161234567.*по заказу 12/);
  assert.equal(await cells.nth(1).textContent(), 'в очереди');
  assert.equal(await cells.nth(2).textContent(), '1 / 3');
  assert.equal(await cells.nth(4).textContent(), 'busy');
  await rows.nth(0).getByRole('button', { name: 'Отменить' }).click();
  await page.getByText('Заявок на обратный звонок нет').waitFor();
  await page.getByLabel('Показать').last().selectOption('all');
  await page.waitForFunction(() => document.querySelectorAll('.requests-table tbody tr').length === 2);
  const states = await page.locator('.requests-table tbody tr td:nth-child(2)').allTextContents();
  assert.deepEqual(states.sort(), ['дозвонились', 'отменена']);
  assert.equal(await page.getByRole('button', { name: 'Отменить' }).count(), 0);
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('missed calls include website requests no missed call accounts for, marked and counted', async () => {
  const db = join(env.data, 'switchboard.db');
  const now = Date.now();
  execFileSync('sqlite3', [db, 'PRAGMA busy_timeout = 5000;' +
    'INSERT INTO callback_request (channel_id, phone, name, language, team_id, status, attempts, max_attempts, ' +
    `retry_seconds, next_attempt_at, created_at, updated_at) VALUES (2, '+79161112233', 'Мария', 'ru', 1, 'queued', ` +
    `0, 3, 600, ${now + 900000}, ${now - 30000}, ${now - 30000});`]);
  const token = env.cli(['token', 'create', '--agent', 'boris@demo.switchboard']).split('\n').pop().trim();
  // waiting: Ольга's missed calls and Мария's request (Пётр was called back, Анна's request cancelled)
  const api = await apiCall(env.base, token, 'GET', '/api/v1/calls/missed');
  assert.equal(api.status, 200);
  assert.deepEqual(api.json.totals, { all: 2, missed_calls: 1, web_requests: 1 });
  const req = api.json.calls.find((r) => r.kind === 'web_request');
  assert.equal(req.phone, '+79161112233');

  const ctx = await env.browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 800 } });
  const page = await signIn(env.base, ctx, 'boris@demo.switchboard', 'demo-boris-1', 'ru');
  await page.getByRole('button', { name: 'Звонки' }).click();
  await page.getByRole('tab', { name: 'Пропущенные' }).click();
  const row = page.locator(`.missed-table tr[data-request="${req.callback_id}"]`);
  await row.waitFor();
  assert.equal(await page.locator('.missed-table tbody tr').count(), 2);
  const cells = row.locator('td');
  assert.equal(await cells.nth(1).textContent(), 'Мария +79161112233 заявка с сайта');
  assert.equal(await cells.nth(3).textContent(), 'Sales');
  assert.equal(await cells.nth(4).textContent(), '—'); // nobody waited on the line
  assert.match(await cells.nth(6).textContent(), /^в очереди, до /);
  assert.equal(await page.locator('.missed-totals').textContent(), 'Всего: 2 (пропущенных звонков: 1, заявок с сайта: 1)');
  // all: Пётр's request, called back, too; the cancelled one never
  await page.getByLabel('Показать').selectOption('all');
  await page.waitForFunction(() => document.querySelectorAll('.missed-table tbody tr').length === 6);
  const web = await page.locator('.missed-table tr.kind-web_request td:nth-child(7)').allTextContents();
  assert.equal(web.length, 2);
  assert.ok(web.includes('дозвонились'), web);
  await page.getByLabel('Язык').selectOption('en');
  await page.locator('.missed-table tr.kind-web_request .badge', { hasText: 'website request' }).first().waitFor();
  await page.getByText(/^Total: 6 \(missed calls: 4, website requests: 2\)$/).waitFor();
  await page.getByLabel('Language').selectOption('ru');
  await page.getByRole('tab', { name: 'Пропущенные' }).waitFor();
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('click-to-call from the customer card: the API says why it cannot call', async () => {
  // the daemon here has no [sip] nor [trunk]: the button shows the API's no_trunk beside it
  const ctx = await env.browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 800 } });
  const page = await signIn(env.base, ctx, 'admin@demo.switchboard', 'demo-admin-1', 'ru');
  await page.goto(env.base + '/#/t/1');
  const card = page.getByRole('complementary', { name: 'Карточка клиента' });
  await card.getByText('+79990001122').waitFor();
  await card.getByRole('button', { name: 'Позвонить' }).click();
  await card.getByRole('alert').filter({ hasText: 'Исходящие звонки не настроены (нет SIP-транка)' }).waitFor();
  assert.deepEqual(page.errors, []);
  await ctx.close();
});
