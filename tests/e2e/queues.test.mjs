// A team's call queue (routing.call_queue) in Settings → Teams, in a real
// browser (Debian's chromium driven by playwright-core): an admin sets
// Support's queue (round robin, wrap-up 10 s, the place in line every 30 s,
// callback key *); a wrap-up the API refuses is shown beside its input; the
// stored document is exactly what was set, with what the form does not
// edit (hold_prompt) and the rest of the team's routing kept; saving the
// team again keeps the queue; ringback turns the announcements and the
// callback key off (and leaves them out); emptied fields leave their keys
// out; the list shows the strategy. In English at 360 px a new team gets a
// queue and nothing scrolls sideways. SB_SCREENSHOTS=DIR saves screenshots.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { apiCall, signIn, start, waitFor } from './harness.mjs';

const SHOTS = process.env.SB_SCREENSHOTS;
let env, base, admin, browser, calendar, support, anna;

const api = (method, path, body) => apiCall(base, admin, method, path, body);

async function signInAsAdmin(ctx, lang) {
  const page = await signIn(base, ctx, 'admin@demo.switchboard', 'demo-admin-1', lang);
  await page.getByRole('button', { name: lang === 'ru' ? 'Настройки' : 'Settings', exact: true }).click();
  await page.getByRole('navigation', { name: lang === 'ru' ? 'Разделы настроек' : 'Settings sections' })
    .getByRole('button', { name: lang === 'ru' ? 'Команды' : 'Teams', exact: true }).click();
  await page.getByRole('heading', { name: lang === 'ru' ? 'Команды' : 'Teams', exact: true }).waitFor();
  return { page, errors: page.errors };
}

/* The error shown for a control: the element its aria-describedby names. */
async function errorOf(control) {
  await waitFor(async () => (await control.getAttribute('aria-invalid')) === 'true');
  const ids = (await control.getAttribute('aria-describedby')).split(' ');
  const page = control.page();
  const texts = [];
  for (const id of ids) texts.push(await page.locator(`[id="${id}"]`).textContent());
  return texts.join(' ');
}

async function noSidewaysScroll(page) {
  const [sw, cw] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  assert.ok(sw <= cw, `page is ${sw}px wide in a ${cw}px window`);
}

async function saved(page, lang = 'ru') {
  await page.getByRole('status').filter({ hasText: lang === 'ru' ? 'Сохранено' : 'Saved' }).waitFor();
}

const routingOf = async (id) => {
  const r = await api('GET', `/api/v1/teams/${id}`);
  assert.equal(r.status, 200);
  return r.json.team.routing;
};

before(async () => {
  env = await start();
  ({ base, browser } = env);
  admin = env.cli(['token', 'create', '--agent', 'admin@demo.switchboard']);
  const cal = await api('POST', '/api/v1/calendars', { name: 'Офис', time_zone: 'Europe/Moscow', hours: { mon: [['09:00', '18:00']] } });
  assert.equal(cal.status, 201);
  calendar = cal.json.calendar.id;
  support = (await api('GET', '/api/v1/teams')).json.teams.find((x) => x.name === 'Support');
  anna = (await api('GET', '/api/v1/agents')).json.agents.find((x) => x.email === 'anna@demo.switchboard');
  // Routing the queue section must not lose, and a queue key the form does
  // not edit (hold_prompt) next to one it shows (the fallback).
  const r = await api('PATCH', `/api/v1/teams/${support.id}`, {
    routing: {
      strategy: 'least_busy', supervisor_id: anna.id, calendar_id: calendar, unanswered_minutes: { chat: 5, call: 2 },
      sticky_wait_minutes: 30, auto_away_after: 4, call_queue: { hold_prompt: 'wait', max_wait_fallback: 'hangup' },
    },
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
});

after(async () => {
  await env?.stop();
});

test('an admin sets a team’s call queue; a refused value is shown beside its field; the rest of routing survives', async () => {
  const ctx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 900 } });
  const { page, errors } = await signInAsAdmin(ctx, 'ru');
  const row = page.locator(`li[data-team="${support.id}"]`);
  await row.waitFor();
  assert.equal(await row.locator('.badge.call-queue').count(), 0, 'no strategy set: no queue badge');

  await page.getByRole('button', { name: 'Изменить: Support' }).click();
  const queue = page.getByRole('group', { name: 'Очередь звонков' });
  await queue.waitFor();
  const strategy = queue.getByLabel('Порядок вызова операторов', { exact: true });
  const wrapup = queue.getByLabel('Пауза после разговора, секунд', { exact: true });
  const announce = queue.getByLabel('Сообщать место в очереди каждые, секунд', { exact: true });
  const callback = queue.getByLabel('Клавиша «перезвоните мне»', { exact: true });
  const ringback = queue.getByLabel(/Не отвечать, пока клиент ждёт/);
  const fallback = queue.getByLabel('Когда ожидание истекло', { exact: true });
  // What is stored is shown; the default strategy is explained.
  assert.equal(await strategy.inputValue(), '');
  assert.equal(await fallback.inputValue(), 'hangup');
  assert.match(await queue.textContent(), /Звонят телефоны всех свободных операторов/);
  await strategy.selectOption('round_robin');
  await queue.getByText('По очереди: следующему после того, кто ответил на прошлый звонок.').waitFor();
  await wrapup.fill('99999');
  await announce.fill('30');
  await callback.selectOption('*');
  await page.getByRole('button', { name: 'Сохранить' }).click();
  // The API's 422 beside the wrap-up input, which gets the focus.
  assert.match(await errorOf(wrapup), /must be 0 to 3600 seconds/);
  await waitFor(() => wrapup.evaluate((el) => el === document.activeElement));
  await page.getByRole('alert').filter({ hasText: 'Не сохранено' }).waitFor();
  assert.equal((await routingOf(support.id)).call_queue.strategy, undefined, 'nothing was saved');
  await wrapup.fill('10');
  await page.getByRole('button', { name: 'Сохранить' }).click();
  await saved(page);

  const others = {
    strategy: 'least_busy', supervisor_id: anna.id, calendar_id: calendar, unanswered_minutes: { chat: 5, call: 2 },
    sticky_wait_minutes: 30, auto_away_after: 4,
  };
  const cq = { strategy: 'round_robin', wrapup_seconds: 10, announce_seconds: 30, callback_digit: '*', hold_prompt: 'wait', max_wait_fallback: 'hangup' };
  assert.deepEqual(await routingOf(support.id), { ...others, call_queue: cq });
  // The list shows the strategy.
  await waitFor(async () => /звонки: по кругу/.test(await row.locator('.badge.call-queue').textContent().catch(() => '')));
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'settings-team-list.png'), fullPage: true });

  // Saving the team for something else keeps the queue.
  await page.getByRole('button', { name: 'Изменить: Support' }).click();
  await page.getByLabel('Перевести в «Отошёл» после стольких неотвеченных подряд').fill('5');
  assert.equal(await wrapup.inputValue(), '10');
  assert.equal(await callback.inputValue(), '*');
  await page.getByRole('button', { name: 'Сохранить' }).click();
  await saved(page);
  assert.deepEqual(await routingOf(support.id), { ...others, auto_away_after: 5, call_queue: cq });

  // Ringback: no announcements nor callback key (the fields say why and are
  // disabled, and their values are left out); unticked, they come back.
  await page.getByRole('button', { name: 'Изменить: Support' }).click();
  assert.equal(await ringback.isChecked(), false);
  assert.equal(await announce.isEnabled(), true);
  await ringback.check();
  assert.equal(await announce.isDisabled(), true);
  assert.equal(await callback.isDisabled(), true);
  assert.match(await queue.textContent(), /ни сообщений о месте в очереди и не может нажать клавишу обратного звонка/);
  assert.match(await announce.getAttribute('aria-describedby').then((id) => page.locator(`[id="${id}"]`).textContent()),
    /недоступно, пока клиент слышит гудки/);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'settings-team-queue.png'), fullPage: true });
  await page.getByRole('button', { name: 'Сохранить' }).click();
  await saved(page);
  assert.deepEqual((await routingOf(support.id)).call_queue,
    { strategy: 'round_robin', wrapup_seconds: 10, ringback: true, hold_prompt: 'wait', max_wait_fallback: 'hangup' });
  await page.getByRole('button', { name: 'Изменить: Support' }).click();
  assert.equal(await ringback.isChecked(), true);
  assert.equal(await announce.isDisabled(), true);
  await ringback.uncheck();
  assert.equal(await announce.isEnabled(), true);
  assert.equal(await callback.isEnabled(), true);

  // Emptied fields leave their keys out (the defaults apply); the badge goes.
  await strategy.selectOption('');
  await wrapup.fill('');
  await fallback.selectOption('');
  await page.getByRole('button', { name: 'Сохранить' }).click();
  await saved(page);
  assert.deepEqual(await routingOf(support.id), { ...others, auto_away_after: 5, call_queue: { hold_prompt: 'wait' } });
  await waitFor(async () => (await row.locator('.badge.call-queue').count()) === 0);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('in English on a phone a new team gets a call queue; nothing scrolls sideways', async () => {
  const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 360, height: 740 } });
  const { page, errors } = await signInAsAdmin(ctx, 'en');
  await page.getByRole('button', { name: 'New team' }).click();
  const queue = page.getByRole('group', { name: 'Call queue' });
  await queue.waitFor();
  await page.getByLabel('Name', { exact: true }).fill('Hotline');
  await queue.getByLabel('Ring strategy', { exact: true }).selectOption('fewest_calls');
  await queue.getByText('Rings the agent who answered the fewest calls of this queue today.').waitFor();
  await queue.getByLabel('Ring each agent for, seconds', { exact: true }).fill('15');
  await queue.getByLabel('Longest wait, seconds', { exact: true }).fill('0');
  await queue.getByLabel('When the wait runs out', { exact: true }).selectOption('voicemail');
  await queue.getByLabel('Pause before ringing everyone again, seconds', { exact: true }).fill('5');
  await queue.getByLabel('Ring the customer’s own agent alone for, seconds', { exact: true }).fill('8');
  // An announcement period of 5 s is refused beside its input.
  const announce = queue.getByLabel('Announce the place in line every, seconds', { exact: true });
  await announce.fill('5');
  await noSidewaysScroll(page);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'settings-team-queue-phone.png'), fullPage: true });
  await page.getByRole('button', { name: 'Create' }).click();
  assert.match(await errorOf(announce), /must be 0 \(never\) or 10 to 3600 seconds/);
  await noSidewaysScroll(page);
  await announce.fill('');
  await queue.getByLabel(/Do not answer while the caller waits/).check();
  assert.equal(await queue.getByLabel('“Call me back” key', { exact: true }).isDisabled(), true);
  await queue.getByLabel('Ask the caller to rate the call').check();
  await queue.getByText('When the agent hangs up first, the caller hears “Please rate the call from 1 to 5”.', { exact: false }).waitFor();
  // The first try created the team (its routing was refused): now Save
  // PATCHes it, and no second team is made.
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await saved(page, 'en');
  const teams = (await api('GET', '/api/v1/teams')).json.teams.filter((x) => x.name === 'Hotline');
  assert.equal(teams.length, 1);
  assert.deepEqual(teams[0].routing, {
    strategy: 'round_robin',
    call_queue: {
      strategy: 'fewest_calls', ring_timeout_seconds: 15, max_wait_seconds: 0, max_wait_fallback: 'voicemail',
      retry_seconds: 5, preferred_seconds: 8, ringback: true, rating: true,
    },
  });
  const row = page.locator(`li[data-team="${teams[0].id}"]`);
  await waitFor(async () => /calls: fewest calls/.test(await row.locator('.badge.call-queue').textContent().catch(() => '')));
  await noSidewaysScroll(page);
  assert.deepEqual(errors, []);
  await ctx.close();
});
