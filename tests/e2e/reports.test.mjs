// Supervisors' reports in a real browser: tickets arrive through the signed
// API channel and are assigned, answered and resolved through the API; the
// supervisor opens Reports, groups by agent and by channel and sees the
// right numbers; the CSV download says what the API says; RU and EN render;
// the table stays inside its box on a phone; an agent has no Reports.
// SB_SCREENSHOTS=DIR saves reports.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiCall, signIn, signedInbound, start, waitFor } from './harness.mjs';

const SHOTS = process.env.SB_SCREENSHOTS;
let env, base, browser, secret;
const tokens = {};
const ids = {};

const api = (who, method, path, body) => apiCall(base, tokens[who], method, path, body);

async function ok(who, method, path, body) {
  const r = await api(who, method, path, body);
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

const inbound = async (payload) => (await signedInbound(base, secret, payload)).ticket_number;

/* RFC 4180 fields (quoted fields may hold the separator, quotes, line ends). */
function parseCsv(text, sep) {
  const rows = [];
  let row = [], field = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === sep) { row.push(field); field = ''; }
    else if (c === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i++; }
    else field += c;
  }
  assert.equal(field, '', 'the text ends with a line end');
  assert.equal(row.length, 0, 'the text ends with a line end');
  return rows;
}

/* The table's rows as {name: {created, resolved}} and the total. */
async function tableFigures(page) {
  return page.locator('.report-table table').evaluate((table) => {
    const cell = (tr, col) => tr.querySelector(`[data-col="${col}"]`).firstChild.textContent;
    const out = {};
    for (const tr of table.querySelectorAll('tbody tr[data-key], tfoot tr')) {
      out[tr.querySelector('th').textContent] = [cell(tr, 'created'), cell(tr, 'resolved'), cell(tr, 'reassignments')];
    }
    return out;
  });
}

before(async () => {
  env = await start();
  ({ base, browser } = env);
  for (const who of ['admin', 'anna', 'boris']) tokens[who] = env.cli(['token', 'create', '--agent', `${who}@demo.switchboard`]);
  secret = env.cli(['channel', 'secret', '1']);
  for (const a of (await ok('admin', 'GET', '/api/v1/agents')).agents) ids[a.email.split('@')[0]] = a.id;
  // Three customers write. Anna gets one, answers and resolves it; Boris gets one and resolves it;
  // the third goes to Anna and then to Boris: one reassignment, his (figures follow the current assignee).
  const a1 = await inbound({ external_id: 'rep-1', from: { id: 'c-1', name: 'Ирина' }, text: 'Где заказ?' });
  const a2 = await inbound({ external_id: 'rep-2', from: { id: 'c-2', name: 'Пётр' }, text: 'Счёт, пожалуйста' });
  const b1 = await inbound({ external_id: 'rep-3', from: { id: 'c-3', name: 'Олег' }, text: 'Возврат' });
  await ok('admin', 'PATCH', `/api/v1/tickets/${a1}`, { assignee_id: ids.anna, team_id: 1, tags: ['delivery'] });
  await ok('admin', 'PATCH', `/api/v1/tickets/${a2}`, { assignee_id: ids.anna, team_id: 1 });
  await ok('admin', 'PATCH', `/api/v1/tickets/${b1}`, { assignee_id: ids.boris, team_id: 2 });
  await ok('admin', 'PATCH', `/api/v1/tickets/${a2}`, { assignee_id: ids.boris });
  await ok('anna', 'POST', `/api/v1/tickets/${a1}/messages`, { text: 'Заказ в пути' });
  await ok('anna', 'PATCH', `/api/v1/tickets/${a1}`, { status: 'resolved' });
  await ok('boris', 'PATCH', `/api/v1/tickets/${b1}`, { status: 'resolved' });
});

after(async () => {
  await env?.stop();
});

test('a supervisor reads the report by agent and by channel and downloads the CSV', async () => {
  const ctx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await signIn(base, ctx, 'boris@demo.switchboard', 'demo-boris-1', 'ru');
  const errors = page.errors;
  await page.getByRole('button', { name: 'Отчёты' }).click();
  await page.getByRole('heading', { name: 'Отчёты' }).waitFor();

  // Today, by agent (the defaults): the figures the API gave these tickets.
  assert.equal(await page.getByLabel('Период').inputValue(), 'today');
  assert.equal(await page.getByLabel('Группировка').inputValue(), 'agent');
  await page.locator('.report-table tbody tr[data-key]').first().waitFor();
  let figures = await tableFigures(page);
  assert.deepEqual(figures['Anna Sales / Анна Продажи'], ['1', '1', '0']);
  assert.deepEqual(figures['Boris Support / Борис Поддержка'], ['2', '1', '1']);
  assert.deepEqual(figures['Olga Admin / Ольга Админ'], ['0', '0', '0']);
  assert.deepEqual(figures['Итого'], ['3', '2', '1']);
  const anna = page.locator(`.report-table tbody tr[data-key="${ids.anna}"]`);
  // Anna's first response came within seconds: a duration in minutes, not a dash.
  assert.match(await anna.locator('[data-col="frt-median"]').textContent(), /^\d+(,\d)? мин$/);
  assert.match(await anna.locator('[data-col="sla"]').textContent(), /^—/);
  const boris = page.locator(`.report-table tbody tr[data-key="${ids.boris}"]`);
  assert.equal(await boris.locator('[data-col="frt-median"]').textContent(), '—'); // nobody answered his
  await page.getByRole('columnheader', { name: 'Оператор' }).waitFor();
  await page.getByRole('rowheader', { name: 'Итого' }).waitFor();

  // The last 7 days by channel: every ticket came through the API channel.
  await page.getByLabel('Период').selectOption('week');
  await page.getByLabel('Группировка').selectOption('channel');
  await page.locator('.report-table tbody tr[data-key="api"]').waitFor();
  figures = await tableFigures(page);
  assert.deepEqual(figures['API'], ['3', '2', '1']);
  assert.deepEqual(figures['Чат на сайте'], ['0', '0', '0']);
  assert.deepEqual(figures['Итого'], ['3', '2', '1']);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'reports.png') });

  // The CSV of the same period and grouping: Russian spreadsheet conventions.
  const link = page.getByRole('link', { name: 'Скачать CSV' });
  const href = new URL(await link.getAttribute('href'), base);
  assert.equal(href.searchParams.get('by'), 'channel');
  assert.equal(href.searchParams.get('format'), 'csv');
  assert.equal(href.searchParams.get('delimiter'), 'semicolon');
  // The period is local midnights, 7 days apart.
  const from = new Date(href.searchParams.get('from')), to = new Date(href.searchParams.get('to'));
  assert.match(href.searchParams.get('from'), /^\d{4}-\d\d-\d\dT00:00:00[+-]\d\d:\d\d$/);
  assert.equal(Math.round((to - from) / 86400000), 7);
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  assert.match(download.suggestedFilename(), /^report-by-channel-\d{4}-\d\d-\d\d_\d{4}-\d\d-\d\d\.csv$/);
  const bytes = readFileSync(await download.path());
  assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'UTF-8 byte order mark');
  const table = parseCsv(bytes.subarray(3).toString('utf8'), ';');
  assert.equal(table[0][0], 'Канал');
  assert.equal(table[0][1], 'Создано обращений');
  const json = (await ok('boris', 'GET', `/api/v1/metrics/report?from=${encodeURIComponent(href.searchParams.get('from'))}` +
    `&to=${encodeURIComponent(href.searchParams.get('to'))}&by=channel`));
  const csvRows = Object.fromEntries(table.slice(1).map((r) => [r[0], r]));
  for (const row of json.rows) {
    const line = csvRows[row.name];
    assert.ok(line, `a CSV line for ${row.name}`);
    assert.deepEqual([line[1], line[2], line[3], line[15]],
      [row.tickets_created, row.tickets_resolved, row.first_response.count, row.reassignments].map(String));
    const median = row.first_response.median_minutes;
    assert.equal(line[4], median === null ? '' : median.toFixed(1).replace('.', ','));
  }
  assert.deepEqual(table.at(-1).slice(0, 3), ['Итого', '3', '2']);
  assert.equal(table.length, 1 + json.rows.length + 1);

  // English: the same table in English, the CSV link in English conventions.
  await page.getByLabel('Язык').selectOption('en');
  await page.getByRole('heading', { name: 'Reports' }).waitFor();
  assert.equal(await page.getByLabel('Group by').inputValue(), 'channel');
  figures = await tableFigures(page);
  assert.deepEqual(figures['Website chat'], ['0', '0', '0']);
  assert.deepEqual(figures['Total'], ['3', '2', '1']);
  const en = new URL(await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href'), base);
  assert.equal(en.searchParams.get('lang'), 'en');
  assert.equal(en.searchParams.get('delimiter'), null);

  // Chosen dates: an impossible range says so; a valid one reports.
  await page.getByLabel('Period').selectOption('custom');
  await page.getByLabel('From', { exact: true }).fill('2025-03-10');
  await page.getByLabel('To', { exact: true }).fill('2025-03-01');
  await page.getByRole('alert').waitFor();
  assert.equal(await page.locator('.report-table').count(), 0);
  await page.getByLabel('To', { exact: true }).fill('2025-03-31');
  await page.locator('.report-table tfoot').waitFor();
  figures = await tableFigures(page);
  assert.deepEqual(figures['Total'], ['0', '0', '0']);
  const custom = new URL(await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href'), base);
  assert.match(custom.searchParams.get('from'), /^2025-03-10T00:00:00[+-]/);
  assert.match(custom.searchParams.get('to'), /^2025-04-01T00:00:00[+-]/);
  await page.getByLabel('Language').selectOption('ru');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('on a phone the report scrolls inside its box', async () => {
  const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 390, height: 800 } });
  const page = await signIn(base, ctx, 'boris@demo.switchboard', 'demo-boris-1', 'en');
  await page.getByRole('button', { name: 'Reports' }).click();
  await page.locator('.report-table tbody tr[data-key]').first().waitFor();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no horizontal page scrolling (page is ${width}px wide)`);
  const box = await page.locator('.report-table').evaluate((e) => [e.scrollWidth, e.clientWidth]);
  assert.ok(box[0] > box[1], 'the table scrolls in its own box');
  await ctx.close();
});

test('an agent has no Reports', async () => {
  const ctx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 800 } });
  const page = await signIn(base, ctx, 'anna@demo.switchboard', 'demo-anna-1', 'ru');
  await page.getByRole('button', { name: 'Обращения' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Отчёты' }).count(), 0);
  // And the API refuses her the report, as a download too.
  const r = await page.evaluate(async () => (await fetch('/api/v1/metrics/report?from=2025-01-01T00:00:00Z' +
    '&to=2025-01-02T00:00:00Z&by=agent&format=csv')).status);
  assert.equal(r, 403);
  await ctx.close();
});
