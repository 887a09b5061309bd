// The admins' settings screens in a real browser (Debian's chromium driven
// by playwright-core): an admin builds a rule in the form builder and a
// message through the signed API channel shows it took effect; API
// validation errors appear next to the field they name; a team's strategy
// is saved; the web chat snippet is shown and copied; the webhook screen
// lists the rule's URL, its delivery and the signing secret; RU and EN
// render, and nothing scrolls sideways at phone width. SB_SCREENSHOTS=DIR
// saves screenshots.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { apiCall, signIn, signedInbound, start, waitFor } from './harness.mjs';

const SHOTS = process.env.SB_SCREENSHOTS;
let env, base, admin, secret, browser;

const api = (method, path, body) => apiCall(base, admin, method, path, body);

const inbound = (payload) => signedInbound(base, secret, payload);

async function signInAsAdmin(ctx, lang) {
  const page = await signIn(base, ctx, 'admin@demo.switchboard', 'demo-admin-1', lang);
  await page.getByRole('button', { name: lang === 'ru' ? 'Настройки' : 'Settings', exact: true }).click();
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

before(async () => {
  env = await start();
  ({ base, browser } = env);
  admin = env.cli(['token', 'create', '--agent', 'admin@demo.switchboard']);
  secret = env.cli(['channel', 'secret', '1']);
});

after(async () => {
  await env?.stop();
});

test('an admin builds a rule in the form builder and it takes effect', async () => {
  const ctx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 900 } });
  const { page, errors } = await signInAsAdmin(ctx, 'ru');
  await page.getByRole('heading', { name: 'Правила' }).waitFor();
  await page.getByRole('button', { name: 'Новое правило' }).click();

  // Saved without a name: the API's 422 shows next to the name field.
  const name = page.getByLabel('Название', { exact: true });
  await page.getByRole('button', { name: 'Сохранить' }).click();
  assert.match(await errorOf(name), /is required/);
  await waitFor(() => name.evaluate((el) => el === document.activeElement)); // and focused

  // «When a ticket is created and the text contains "срочно": priority
  // urgent, tag vip.»
  await name.fill('Срочные — в VIP');
  assert.equal(await page.getByLabel('Создано обращение').isChecked(), true);
  await page.getByRole('button', { name: 'Добавить условие' }).first().click();
  await page.getByLabel('Условие 1: Поле').selectOption('text');
  // The operators follow the field.
  const ops = await page.getByLabel('Условие 1: Оператор').locator('option').evaluateAll((o) => o.map((x) => x.value));
  assert.deepEqual(ops, ['contains', 'not_contains', 'matches']);
  await page.getByLabel('Условие 1: Значение').fill('срочно');
  await page.getByLabel('Действие 1: Тип').selectOption('set_priority');
  await page.getByLabel('Действие 1: Приоритет').selectOption('urgent');
  await page.getByRole('button', { name: 'Добавить действие' }).click();
  await page.getByLabel('Действие 2: Тип').selectOption('add_tag');
  await page.getByLabel('Действие 2: Тег').fill('vip!');
  // A bad value inside an action: the error is placed on that action's field.
  await page.getByLabel('Действие 2: Тег').fill('');
  await page.getByRole('button', { name: 'Сохранить' }).click();
  assert.match(await errorOf(page.getByLabel('Действие 2: Тег')), /must be a tag/);
  await page.getByLabel('Действие 2: Тег').fill('vip');
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'settings-rules.png'), fullPage: true });
  await page.getByRole('button', { name: 'Сохранить' }).click();
  await page.getByRole('status').filter({ hasText: 'Сохранено' }).waitFor();
  await page.locator('.items li', { hasText: 'Срочные — в VIP' }).waitFor();

  // Stored as a rule document the engine understands.
  const rules = (await api('GET', '/api/v1/rules')).json.rules;
  const rule = rules.find((r) => r.name === 'Срочные — в VIP');
  assert.deepEqual(rule.on, ['ticket.created']);
  assert.deepEqual(rule.when, { all: [{ field: 'text', op: 'contains', value: ['срочно'] }] });
  assert.deepEqual(rule.actions, [{ type: 'set_priority', value: 'urgent' }, { type: 'add_tag', value: 'vip' }]);

  // It takes effect: a customer writes «срочно» through the signed API
  // channel (and, just before, another one does not: the engine handles
  // them in order, so once the second is urgent the first was decided).
  const calm = await inbound({ external_id: 'adm-2', from: { id: 'cust-adm-2', name: 'Пётр' }, text: 'Несрочно: когда доставка?' });
  const r = await inbound({ external_id: 'adm-1', from: { id: 'cust-adm-1', name: 'Ольга' }, text: 'Это срочно, заказ не пришёл' });
  const ticket = await waitFor(async () => {
    const t = (await api('GET', `/api/v1/tickets/${r.ticket_number}`)).json.ticket;
    return t.priority === 'urgent' && t.tags.includes('vip') ? t : null;
  });
  assert.equal(ticket.priority, 'urgent');
  const other = (await api('GET', `/api/v1/tickets/${calm.ticket_number}`)).json.ticket;
  assert.deepEqual([other.priority, other.tags.includes('vip')], ['normal', false]);

  // Edit it in the builder: disabled, saved by PUT.
  await page.getByRole('button', { name: 'Изменить: Срочные — в VIP' }).click();
  assert.equal(await page.getByLabel('Условие 1: Значение').inputValue(), 'срочно');
  await page.getByLabel('Включено').uncheck();
  await page.getByRole('button', { name: 'Сохранить' }).click();
  await page.getByRole('status').filter({ hasText: 'Сохранено' }).waitFor();
  assert.equal((await api('GET', `/api/v1/rules/${rule.id}`)).json.rule.enabled, false);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a template with an unknown placeholder is refused next to its text; a team strategy is saved', async () => {
  const ctx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 900 } });
  const { page, errors } = await signInAsAdmin(ctx, 'ru');
  await page.getByRole('navigation', { name: 'Разделы настроек' }).getByRole('button', { name: 'Шаблоны' }).click();
  await page.getByRole('button', { name: 'Новый шаблон' }).click();
  await page.getByLabel('Название', { exact: true }).fill('Приветствие');
  const text = page.getByLabel('Текст (ru)', { exact: true });
  await text.fill('Здравствуйте, {{contact.nmae}}!');
  await page.getByRole('button', { name: 'Создать' }).click();
  assert.match(await errorOf(text), /unknown placeholder \{\{contact\.nmae\}\}/);
  // A placeholder from the list is inserted where the cursor is.
  await text.fill('Здравствуйте, !');
  await text.evaluate((el) => el.setSelectionRange(14, 14));
  await page.getByRole('button', { name: '{{contact.first_name}}' }).click();
  assert.equal(await text.inputValue(), 'Здравствуйте, {{contact.first_name}}!');
  await page.getByRole('button', { name: 'Создать' }).click();
  await page.getByRole('status').filter({ hasText: 'Сохранено' }).waitFor();
  const tpl = (await api('GET', '/api/v1/templates')).json.templates.find((x) => x.name === 'Приветствие');
  assert.deepEqual(tpl.texts, { ru: 'Здравствуйте, {{contact.first_name}}!' });

  await page.getByRole('navigation', { name: 'Разделы настроек' }).getByRole('button', { name: 'Команды' }).click();
  await page.getByRole('button', { name: 'Изменить: Support' }).click();
  await page.getByLabel('Распределение').selectOption('least_busy');
  // A limit the API refuses is shown beside its input.
  await page.getByLabel('Перевести в «Отошёл» после стольких неотвеченных подряд').fill('500');
  await page.getByRole('button', { name: 'Сохранить' }).click();
  assert.match(await errorOf(page.getByLabel('Перевести в «Отошёл» после стольких неотвеченных подряд')), /0 \(never\) to 100/);
  await page.getByLabel('Перевести в «Отошёл» после стольких неотвеченных подряд').fill('3');
  await page.getByRole('button', { name: 'Сохранить' }).click();
  await page.getByRole('status').filter({ hasText: 'Сохранено' }).waitFor();
  const team = (await api('GET', '/api/v1/teams')).json.teams.find((x) => x.name === 'Support');
  assert.equal(team.routing.strategy, 'least_busy');
  assert.equal(team.routing.auto_away_after, 3);

  // Blacklist: the reason is required, shown next to it.
  await page.getByRole('navigation', { name: 'Разделы настроек' }).getByRole('button', { name: 'Чёрный список' }).click();
  await page.getByLabel('Значение').fill('8 (916) 000-11-22');
  await page.getByRole('button', { name: 'Добавить', exact: true }).click();
  assert.match(await errorOf(page.getByLabel('Причина')), /reason/);
  await page.getByLabel('Причина').fill('Спам <b>рассылки</b>');
  await page.getByRole('button', { name: 'Добавить', exact: true }).click();
  // The reason is text, not markup.
  await page.locator('.items li', { hasText: '+79160001122' }).getByText('Спам <b>рассылки</b>').waitFor();
  assert.equal(await page.locator('.items li b').count(), 0);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('channels show the widget snippet; webhooks list the rule, its deliveries and the secret; EN and phone width', async () => {
  // A rule that calls a webhook nobody answers: a delivery that keeps failing.
  assert.equal((await api('POST', '/api/v1/rules', {
    name: 'CRM', on: ['ticket.created'], actions: [{ type: 'webhook', url: 'http://127.0.0.1:9/crm' }],
  })).status, 201);
  const r = await inbound({ external_id: 'adm-3', from: { id: 'cust-adm-3' }, text: 'Здравствуйте' });

  const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const { page, errors } = await signInAsAdmin(ctx, 'en');
  const nav = page.getByRole('navigation', { name: 'Settings sections' });
  await page.getByRole('heading', { name: 'Rules' }).waitFor();

  await nav.getByRole('button', { name: 'Channels' }).click();
  const snippet = page.getByRole('textbox', { name: /Code for the website/ });
  const code = await snippet.inputValue();
  assert.match(code, /<script src="http:\/\/127\.0\.0\.1:\d+\/widget\.js" data-channel="2" async><\/script>/);
  assert.equal(await snippet.getAttribute('readonly'), '');
  await page.locator('li[data-channel="2"]').getByRole('button', { name: 'Copy' }).click();
  await page.locator('li[data-channel="2"]').getByRole('status').filter({ hasText: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), code);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'settings-channels.png'), fullPage: true });
  // An API channel gets a new signing secret, shown once; the old one stops working.
  const api1 = page.locator('li[data-channel="1"]');
  await api1.getByRole('button', { name: /^New signing secret/ }).click();
  await api1.getByRole('button', { name: 'Yes' }).click();
  const fresh = await api1.getByRole('textbox', { name: /Signing secret/ }).inputValue();
  assert.match(fresh, /^[0-9a-f]{64}$/);
  assert.equal(fresh, env.cli(['channel', 'secret', '1']));
  const old = secret;
  secret = fresh;
  await inbound({ external_id: 'adm-4', from: { id: 'cust-adm-4' }, text: 'Новый ключ' });
  secret = old;
  await assert.rejects(inbound({ external_id: 'adm-5', from: { id: 'cust-adm-4' }, text: 'Старый ключ' }));
  secret = fresh;

  await nav.getByRole('button', { name: 'Webhooks' }).click();
  await page.getByRole('list', { name: 'Rules with webhooks' }).getByRole('listitem')
    .filter({ hasText: 'CRM' }).getByText('http://127.0.0.1:9/crm').waitFor();
  // The delivery from the outbox, with its attempts and the last error.
  const delivery = page.locator('.deliveries li', { hasText: `Ticket #${r.ticket_number} ` });
  await waitFor(async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    return (await delivery.count()) > 0 && /Attempts: [1-9]/.test(await delivery.textContent());
  });
  assert.match(await delivery.textContent(), new RegExp(`Ticket #${r.ticket_number}`));
  assert.match(await delivery.textContent(), /Last error: /);
  await page.getByRole('button', { name: 'Show secret' }).click();
  const shown = await page.getByRole('textbox', { name: 'Webhook signing secret' }).inputValue();
  assert.equal(shown, env.cli(['config', 'webhook-secret']));

  // Phone width: one column, nothing sideways, on every section.
  await page.setViewportSize({ width: 360, height: 740 });
  for (const name of ['Rules', 'Agents', 'Teams', 'Channels', 'SLA policies', 'Calendars', 'Templates', 'Blacklist', 'Webhooks', 'General']) {
    await nav.getByRole('button', { name, exact: true }).click();
    await page.getByRole('heading', { name, exact: true }).waitFor();
    await noSidewaysScroll(page);
  }
  await nav.getByRole('button', { name: 'Rules', exact: true }).click();
  await page.getByRole('button', { name: 'New rule' }).click();
  await page.getByRole('button', { name: /^Add condition/ }).first().click();
  await page.getByRole('button', { name: /^Add group/ }).first().click();
  await page.getByLabel('Condition 1: Field', { exact: true }).selectOption('business_hours');
  await page.getByLabel('Condition 1: Calendar', { exact: true }).waitFor();
  // A nested any-group: its condition on priority offers the priorities.
  await page.getByLabel('Group 2, Condition 1: Field').selectOption('priority');
  await page.getByRole('group', { name: 'Group 2, Condition 1: Value' }).getByLabel('urgent').check();
  await noSidewaysScroll(page);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'settings-phone.png'), fullPage: true });

  // And back to Russian.
  await page.getByLabel('Language', { exact: true }).selectOption('ru');
  await page.getByRole('navigation', { name: 'Разделы настроек' }).waitFor();
  await page.getByRole('heading', { name: 'Правила' }).waitFor();
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('calendars with holidays, SLA policies, agents and the general settings are saved', async () => {
  const ctx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 900 } });
  const { page, errors } = await signInAsAdmin(ctx, 'ru');
  const nav = page.getByRole('navigation', { name: 'Разделы настроек' });

  // A calendar: an overlapping interval is refused on its day; a holiday every year.
  await nav.getByRole('button', { name: 'Календари' }).click();
  await page.getByRole('button', { name: 'Новый календарь' }).click();
  await page.getByLabel('Название', { exact: true }).fill('Офис в Москве');
  await page.getByLabel('Часовой пояс (IANA, например Europe/Moscow)').fill('Europe/Moscow');
  await page.getByLabel('Понедельник').fill('09:00-13:00, 12:00-18:00');
  await page.getByRole('button', { name: 'Добавить праздник' }).click();
  await page.getByLabel('Праздник 1: Дата').fill('2027-01-01');
  await page.getByLabel('Праздник 1: Название').fill('Новый год');
  await page.getByLabel('Праздник 1: каждый год').check();
  await page.getByRole('button', { name: 'Создать' }).click();
  assert.match(await errorOf(page.getByLabel('Понедельник')), /overlaps/);
  await page.getByLabel('Понедельник').fill('09:00-13:00, 14:00-18:00');
  await page.getByRole('button', { name: 'Создать' }).click();
  await page.getByRole('status').filter({ hasText: 'Сохранено' }).waitFor();
  const cal = (await api('GET', '/api/v1/calendars')).json.calendars.find((x) => x.name === 'Офис в Москве');
  assert.deepEqual(cal.hours.mon, [['09:00', '13:00'], ['14:00', '18:00']]);
  assert.deepEqual(cal.holidays, [{ date: '2027-01-01', recurring: true, name: 'Новый год' }]);

  // An SLA policy for VIP chats of Sales on that calendar.
  await nav.getByRole('button', { name: 'SLA' }).click();
  await page.getByRole('button', { name: 'Новая политика' }).click();
  await page.getByLabel('Название', { exact: true }).fill('VIP в чате');
  await page.getByLabel('Команда').selectOption({ label: 'Sales' });
  await page.getByLabel('Тип канала').selectOption('chat');
  await page.getByLabel('VIP-клиенты').selectOption('true');
  await page.getByLabel('Считать время по календарю').selectOption({ label: 'Офис в Москве' });
  await page.getByLabel('Срочный: первый ответ').fill('15');
  await page.getByLabel('Срочный: решение').fill('999999');
  await page.getByRole('button', { name: 'Создать' }).click();
  assert.match(await errorOf(page.getByLabel('Срочный: решение')), /minutes/);
  await page.getByLabel('Срочный: решение').fill('240');
  await page.getByRole('button', { name: 'Создать' }).click();
  await page.getByRole('status').filter({ hasText: 'Сохранено' }).waitFor();
  const pol = (await api('GET', '/api/v1/sla-policies')).json.sla_policies.find((x) => x.name === 'VIP в чате');
  assert.deepEqual(pol.conditions, { team_id: 1, channel: 'chat', vip: true });
  assert.equal(pol.calendar_id, cal.id);
  assert.deepEqual(pol.targets, { urgent: { first_response_minutes: 15, resolution_minutes: 240 } });

  // An agent in Sales with a capacity, skills and languages.
  await nav.getByRole('button', { name: 'Операторы' }).click();
  await page.getByRole('button', { name: 'Новый оператор' }).click();
  await page.getByLabel('Имя').fill('Дина');
  await page.getByLabel('Эл. почта').fill('dina@example.ru');
  await page.getByLabel('Пароль (не короче 8 символов)').fill('short');
  await page.getByRole('button', { name: 'Создать' }).click();
  assert.match(await errorOf(page.getByLabel('Пароль (не короче 8 символов)')), /at least 8/);
  await page.getByLabel('Пароль (не короче 8 символов)').fill('dina-password-1');
  await page.getByRole('group', { name: 'Команды' }).getByLabel('Sales').check();
  await page.getByLabel('Ёмкость (1 = один оператор)').fill('1,5');
  await page.getByLabel('Навыки').fill('billing, returns');
  await page.getByLabel('Языки общения').fill('ru, kk');
  await page.getByRole('button', { name: 'Создать' }).click();
  await page.getByRole('status').filter({ hasText: 'Сохранено' }).waitFor();
  const dina = (await api('GET', '/api/v1/agents')).json.agents.find((x) => x.email === 'dina@example.ru');
  assert.deepEqual([dina.role, dina.team_ids, dina.routing], ['agent', [1], { capacity: 1.5, skills: ['billing', 'returns'], languages: ['ru', 'kk'] }]);
  // Deactivated from the same form.
  await page.getByRole('button', { name: 'Изменить: Дина' }).click();
  await page.getByRole('checkbox', { name: /Активен/ }).uncheck();
  await page.getByRole('button', { name: 'Сохранить' }).click();
  await page.getByRole('status').filter({ hasText: 'Сохранено' }).waitFor();
  assert.equal((await api('GET', `/api/v1/agents/${dina.id}`)).json.agent.active, false);

  // General settings: a bad weight is refused beside it; the company name is stored.
  await nav.getByRole('button', { name: 'Общие' }).click();
  await page.getByLabel('Название компании ({{company.name}})').fill('Ромашка');
  await page.getByLabel('Вес чата в загрузке оператора (0–1)').fill('2');
  await page.getByRole('button', { name: 'Сохранить' }).click();
  assert.match(await errorOf(page.getByLabel('Вес чата в загрузке оператора (0–1)')), /at most 1/);
  await page.getByLabel('Вес чата в загрузке оператора (0–1)').fill('0,25');
  const callback = page.getByLabel('Перезвонить после пропущенного звонка в течение, мин');
  assert.equal(await callback.inputValue(), '15');
  await callback.fill('0');
  await page.getByRole('button', { name: 'Сохранить' }).click();
  assert.match(await errorOf(callback), /1/);
  await callback.fill('30');
  await page.getByRole('button', { name: 'Сохранить' }).click();
  await page.getByRole('status').filter({ hasText: 'Сохранено' }).waitFor();
  const st = (await api('GET', '/api/v1/settings')).json.settings;
  assert.deepEqual([st.company_name, st.weights.chat, st.missed_call_callback_minutes], ['Ромашка', 0.25, 30]);
  assert.deepEqual(errors, []);
  await ctx.close();
});
