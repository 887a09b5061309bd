// The widget's "Call me back" form in a real browser: the button shows only
// when the channel takes call-back requests, errors appear next to the
// field (the browser's own check, then the server's 422 naming the field),
// and a good number is queued (GET /api/v1/callbacks). Nobody is free to
// call back here, so the request stays queued.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { apiCall, start, waitFor } from './harness.mjs';

let env, base, admin;

before(async () => {
  env = await start({ ini: '[sip]\nlisten = 127.0.0.1:0\n[trunk]\nhost = 127.0.0.1:9\n' });
  base = env.base;
  admin = env.cli(['token', 'create', '--agent', 'admin@demo.switchboard']).split('\n').pop().trim();
});

after(async () => {
  await env?.stop();
});

test('a visitor asks to be called back through the widget', async () => {
  const ctx = await env.browser.newContext({ locale: 'ru-RU', viewport: { width: 1200, height: 800 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // without config.callback: no button
  await page.goto(base + '/chat/demo');
  await page.locator('.sbw-launcher').click();
  await page.getByText('Здравствуйте! Чем можем помочь?').waitFor();
  assert.equal(await page.locator('.sbw-cbopen').count(), 0);

  const teams = await apiCall(base, admin, 'GET', '/api/v1/teams');
  const sales = teams.json.teams.find((t) => t.name === 'Sales').id;
  const ch = await apiCall(base, admin, 'GET', '/api/v1/channels/2');
  const config = { ...ch.json.channel.config, callback: { team_id: sales } };
  assert.equal((await apiCall(base, admin, 'PATCH', '/api/v1/channels/2', { config })).status, 200);

  await page.reload();
  await page.locator('.sbw-launcher').click();
  await page.locator('.sbw-cbopen').click();
  await page.getByText('Оставьте номер — мы позвоним вам.').waitFor();
  // no number: the form says so next to the phone field
  await page.locator('.sbw-start:visible').click();
  await page.getByText('Укажите номер телефона.').waitFor();
  // a number the server refuses: its 422 names the field
  await page.locator('input[type=tel]:visible').fill('+0 000 000-00-00');
  await page.locator('.sbw-start:visible').click();
  await page.getByText('Проверьте номер: например, +7 999 123-45-67.').waitFor();
  assert.equal(await page.locator('input[type=tel]:visible').getAttribute('aria-invalid'), 'true');
  // a good one is queued
  await page.locator('input[type=tel]:visible').fill('8 999 765-43-21');
  await page.locator('input[autocomplete=name]:visible').fill('Мария');
  await page.locator('textarea:visible').fill('Вопрос по заказу 4521');
  await page.locator('.sbw-start:visible').click();
  await page.getByText('Спасибо! Мы перезвоним вам в ближайшее время.').waitFor();
  const rows = await waitFor(async () => {
    const r = await apiCall(base, admin, 'GET', '/api/v1/callbacks?status=pending');
    return r.json.callbacks.length ? r.json.callbacks : null;
  });
  assert.deepEqual(rows.map((r) => [r.phone, r.name, r.comment, r.status, r.team_id]),
    [['+79997654321', 'Мария', 'Вопрос по заказу 4521', 'queued', sales]]);
  // again: it joins the pending request
  await page.locator('.sbw-start:visible').click();
  await page.getByText('Заявка уже принята — мы перезвоним.').waitFor();
  // back to the chat
  await page.getByText('Вернуться в чат').click();
  await page.locator('.sbw-input').waitFor();
  assert.deepEqual(errors, []);
  await ctx.close();
});
