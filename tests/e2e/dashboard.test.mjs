// The supervisors' live dashboard in a real browser: a supervisor opens it
// and watches the counters move without reloading (a message arrives
// through the signed API channel, an agent comes online and gets it, the
// ticket is resolved, a new one arrives), marks an agent absent with a
// deputy from the keyboard and ends the absence, in Russian and English, at
// wall-screen and phone widths; an agent does not get the section at all.
// SB_SCREENSHOTS=DIR saves dashboard.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { apiCall, signIn, signedInbound, start, waitFor } from './harness.mjs';

const SHOTS = process.env.SB_SCREENSHOTS;
let env, base, admin, annaToken, secret, browser, annaId, borisId;

const api = (method, path, body, token = admin) => apiCall(base, token, method, path, body);

const inbound = (payload) => signedInbound(base, secret, payload);

before(async () => {
  env = await start();
  ({ base, browser } = env);
  admin = env.cli(['token', 'create', '--agent', 'admin@demo.switchboard']);
  annaToken = env.cli(['token', 'create', '--agent', 'anna@demo.switchboard']);
  secret = env.cli(['channel', 'secret', '1']);
  const agents = (await api('GET', '/api/v1/agents')).json.agents;
  annaId = agents.find((a) => a.email === 'anna@demo.switchboard').id;
  borisId = agents.find((a) => a.email === 'boris@demo.switchboard').id;
  // Everything new goes to Sales, where Anna works, by round robin.
  assert.equal((await api('PATCH', '/api/v1/teams/1', { routing: { strategy: 'round_robin' } })).status, 200);
  assert.equal((await api('POST', '/api/v1/rules', {
    name: 'Всё в продажи', on: ['ticket.created'], actions: [{ type: 'assign_team', id: 1 }],
  })).status, 201);
});

after(async () => {
  await env?.stop();
});

/* The big number of the tile named `label`, once it reads `want`. */
async function tileReads(page, label, want) {
  const value = page.getByRole('group', { name: label, exact: true }).locator('.tile-value');
  await waitFor(async () => (await value.textContent()) === want, 10000).catch(async () => {
    throw new Error(`tile "${label}" reads "${await value.textContent()}", not "${want}"`);
  });
}

test('a supervisor watches the counters move live and manages an absence', async () => {
  const ctx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1600, height: 1000 } });
  const page = await signIn(base, ctx, 'boris@demo.switchboard', 'demo-boris-1', 'ru');
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Boris's account speaks English; the sign-in page followed the browser (Russian).
  await page.getByRole('button', { name: 'Монитор' }).click();
  await page.getByRole('heading', { name: 'Монитор' }).waitFor();
  await tileReads(page, 'Ждут ответа', '0');
  await tileReads(page, 'Решено сегодня', '0');
  await tileReads(page, 'Новых сегодня', '0');

  // A customer writes; nobody of Sales is online: the ticket waits, live.
  const r = await inbound({ external_id: 'dash-1', from: { id: 'dash-42', name: 'Айгерим' }, text: 'Где мой заказ?' });
  await tileReads(page, 'Ждут ответа', '1');
  await tileReads(page, 'Новых сегодня', '1');
  const sales = page.locator('table.groups tr[data-key="1"]');
  await waitFor(async () => (await sales.locator('td.queue').textContent()) === '1');
  await page.locator('table.groups tr[data-key="api"] td.queue', { hasText: '1' }).waitFor();
  // The longest wait ticks on between snapshots.
  const longest = page.getByRole('group', { name: 'Дольше всех ждёт', exact: true }).locator('.tile-value');
  await waitFor(async () => /^[1-9]\d* с$/.test(await longest.textContent()));

  // Anna comes online: the ticket becomes hers, the agents' table shows it.
  assert.equal((await api('POST', `/api/v1/agents/${annaId}/presence`, { presence: 'online' })).status, 200);
  const annaRow = page.locator(`table.agents tr[data-agent="${annaId}"]`);
  await annaRow.locator('.presence', { hasText: 'на линии' }).waitFor({ timeout: 10000 });
  await waitFor(async () => (await annaRow.locator('td.open-tickets').textContent()) === '1');
  await tileReads(page, 'Ждут ответа', '0');
  await tileReads(page, 'Операторов на линии', '1 / 3');

  // She answers and resolves: today's resolved count and the first response move.
  assert.equal((await api('POST', `/api/v1/tickets/${r.ticket_number}/messages`, { text: 'Проверяю' }, annaToken)).status, 201);
  await waitFor(async () => (await page.getByRole('group', { name: 'Первый ответ (медиана)', exact: true })
    .locator('.tile-value').textContent()) !== '—');
  assert.equal((await api('PATCH', `/api/v1/tickets/${r.ticket_number}`, { status: 'resolved' }, annaToken)).status, 200);
  await tileReads(page, 'Решено сегодня', '1');
  await waitFor(async () => (await annaRow.locator('td.open-tickets').textContent()) === '0');
  // The chart has a bar for this hour with the ticket in it.
  await page.locator('svg.volume rect.bar.now').waitFor();
  assert.match(await page.locator('svg.volume').getAttribute('aria-label'), /всего: 1$/);

  // From the keyboard: Anna is absent until tomorrow, Boris is her deputy.
  const mark = annaRow.getByRole('button', { name: /Отметить отсутствие/ });
  await mark.focus();
  await page.keyboard.press('Enter');
  const form = page.getByRole('form', { name: /Отсутствие оператора Anna/ });
  await form.getByLabel('До', { exact: true }).waitFor();
  // focus moves into the form (set once it has rendered)
  await waitFor(() => page.evaluate(() => document.activeElement?.getAttribute('type') === 'datetime-local'));
  await form.getByLabel('Заместитель', { exact: true }).selectOption({ label: 'Boris Support / Борис Поддержка' });
  await form.getByRole('button', { name: 'Сохранить' }).click();
  await annaRow.locator('.absence-note', { hasText: 'Заместитель: Boris Support' }).waitFor({ timeout: 10000 });
  const snap = (await api('GET', '/api/v1/dashboard')).json;
  const anna = snap.agents.find((a) => a.id === annaId);
  assert.equal(anna.absent, true);
  assert.equal(anna.deputy_id, borisId);
  await tileReads(page, 'Операторов на линии', '0 / 3');
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'dashboard.png'), fullPage: true });
  await annaRow.getByRole('button', { name: /Вернуть/ }).click();
  await waitFor(async () => (await annaRow.locator('.absence-note').count()) === 0);
  await tileReads(page, 'Операторов на линии', '1 / 3');

  // In English: the same figures, and they keep moving.
  await page.getByLabel('Язык').selectOption('en');
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  await tileReads(page, 'Resolved today', '1');
  await tileReads(page, 'New today', '1');
  await inbound({ external_id: 'dash-2', from: { id: 'dash-43', name: 'Ерлан' }, text: 'Нужен счёт' });
  await tileReads(page, 'New today', '2');
  await annaRow.locator('.presence', { hasText: 'online' }).waitFor();
  await waitFor(async () => (await annaRow.locator('td.open-tickets').textContent()) === '1');

  // A phone: no sideways scrolling of the page.
  await page.setViewportSize({ width: 375, height: 800 });
  await tileReads(page, 'New today', '2');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('an agent has no dashboard', async () => {
  const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 800 } });
  const page = await signIn(base, ctx, 'anna@demo.switchboard', 'demo-anna-1', 'en');
  await page.getByRole('navigation', { name: 'Sections' }).getByRole('button').first().waitFor();
  const sections = page.getByRole('navigation', { name: 'Sections' }).getByRole('button');
  const names = await sections.allTextContents();
  assert.ok(names.length > 0);
  assert.ok(!names.some((n) => /Dashboard|Монитор/.test(n)), names.join(', '));
  const status = await page.evaluate(async () => (await fetch('/api/v1/dashboard')).status);
  assert.equal(status, 403);
  await ctx.close();
});
