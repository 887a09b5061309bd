// The operators' workspace in a real browser (Debian's chromium driven by
// playwright-core): an agent signs in, goes online, a customer's message
// arrives through the signed API channel and appears in the inbox live,
// the agent opens it and replies; customer text is never interpreted as
// HTML; RU and EN both render. SB_SCREENSHOTS=DIR saves screenshots.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { apiCall, signIn, signedInbound, start, waitFor } from './harness.mjs';

const SHOTS = process.env.SB_SCREENSHOTS;
let env, base, admin, secret, browser;

const api = (method, path, body) => apiCall(base, admin, method, path, body);

const inbound = (payload) => signedInbound(base, secret, payload);

before(async () => {
  env = await start();
  ({ base, browser } = env);
  admin = env.cli(['token', 'create', '--agent', 'admin@demo.switchboard']);
  secret = env.cli(['channel', 'secret', '1']);
  // Everything new goes to Sales, where Anna works, by round robin.
  assert.equal((await api('PATCH', '/api/v1/teams/1', { routing: { strategy: 'round_robin' } })).status, 200);
  assert.equal((await api('POST', '/api/v1/rules', {
    name: 'Всё в продажи', on: ['ticket.created'], actions: [{ type: 'assign_team', id: 1 }],
  })).status, 201);
  assert.equal((await api('POST', '/api/v1/templates', {
    name: 'Приветствие', shortcut: 'hi',
    texts: { ru: 'Здравствуйте, {{contact.first_name}}! Ваш запрос №{{ticket.number}} у {{agent.first_name}}.' },
  })).status, 201);
});

after(async () => {
  await env?.stop();
});

test('an agent signs in, a message arrives live, the agent replies', async () => {
  const ctx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => { errors.push('dialog: ' + d.message()); d.dismiss(); });

  // The page is served by the daemon with a strict policy.
  const res = await page.goto(base + '/');
  assert.match(res.headers()['content-security-policy'], /script-src 'self'/);
  assert.equal(res.headers()['cache-control'], 'no-cache');

  // Wrong password: an error next to the form; then the right one.
  await page.getByLabel('Эл. почта').fill('anna@demo.switchboard');
  await page.getByLabel('Пароль').fill('wrong-password');
  await page.getByRole('button', { name: 'Войти' }).click();
  await page.getByRole('alert').filter({ hasText: 'Неверная почта или пароль' }).waitFor();
  await page.getByLabel('Пароль').fill('demo-anna-1');
  await page.getByRole('button', { name: 'Войти' }).click();
  await page.getByText('в реальном времени').waitFor();
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'workspace-empty.png') });

  // Online: the engine may now give Anna work.
  await page.getByLabel('Статус').selectOption('online');
  await waitFor(async () => {
    const r = await api('GET', '/api/v1/agents');
    return r.json.agents.find((a) => a.email === 'anna@demo.switchboard');
  });

  // A customer writes, with markup in the text: it must stay text.
  const probe = 'Срочно! <img src=x onerror="window.__xss=1"> где заказ?';
  const r = await inbound({ external_id: 'ws-1', from: { id: 'shop-42', name: 'Айгерим' }, text: probe });
  const item = page.locator(`.ticket[data-number="${r.ticket_number}"]`);
  await item.waitFor({ timeout: 10000 }); // live: no reload
  await item.click();
  const text = page.locator('.messages .message.in .text').first();
  await text.waitFor();
  assert.equal(await text.textContent(), probe);
  assert.equal(await page.locator('.messages img').count(), 0);
  assert.equal(await page.evaluate(() => window.__xss), undefined);

  // Reply from the keyboard shortcut and the button.
  await page.keyboard.press('r');
  await page.getByRole('textbox', { name: 'Ответить' }).fill('Здравствуйте! Проверяю заказ.');
  await page.getByRole('button', { name: 'Отправить' }).click();
  await page.locator('.messages .message.out .text', { hasText: 'Проверяю заказ' }).waitFor();
  const t = await api('GET', `/api/v1/tickets/${r.ticket_number}`);
  const out = t.json.messages.filter((m) => m.direction === 'out');
  assert.equal(out.length, 1);
  assert.equal(out[0].author.name.startsWith('Anna'), true);
  // A template by its shortcut, rendered by the server with the customer's and the agent's names.
  await page.getByLabel('Шаблон…').selectOption({ label: '/hi — Приветствие' });
  await page.locator('.messages .message.out .text',
    { hasText: `Здравствуйте, Айгерим! Ваш запрос №${r.ticket_number} у Anna.` }).waitFor();
  // Priority from the header; the customer card shows who it is and their tickets.
  await page.getByLabel('Приоритет').selectOption('urgent');
  await waitFor(async () => (await api('GET', `/api/v1/tickets/${r.ticket_number}`)).json.ticket.priority === 'urgent');
  const card = page.getByLabel('Карточка клиента');
  await card.locator('h3', { hasText: 'Айгерим' }).waitFor();
  await card.locator('.history li.current', { hasText: `#${r.ticket_number}` }).waitFor();
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'workspace-ticket.png') });
  // The address names the open ticket: a reload (or a link) opens it again.
  assert.equal(new URL(page.url()).hash, `#/t/${r.ticket_number}`);
  await page.reload();
  await page.getByRole('region', { name: `#${r.ticket_number}` }).waitFor();

  // English, then back to Russian.
  await page.getByLabel('Язык').selectOption('en');
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  await page.getByRole('button', { name: 'Resolve' }).click();
  await waitFor(async () => (await api('GET', `/api/v1/tickets/${r.ticket_number}`)).json.ticket.status === 'resolved');
  await page.getByLabel('Language').selectOption('ru');
  await page.getByRole('button', { name: 'Выйти' }).waitFor();
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a visitor writes in the widget, the agent answers with a template, the visitor sees it', async () => {
  const agentCtx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 800 } });
  const visitorCtx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1000, height: 800 } });
  const page = await signIn(base, agentCtx, 'anna@demo.switchboard', 'demo-anna-1');
  await page.getByLabel('Статус').selectOption('online');
  await page.getByRole('button', { name: 'Моя команда' }).click();

  const visitor = await visitorCtx.newPage();
  await visitor.goto(base + '/chat/demo');
  await visitor.locator('.sbw-launcher').click();
  await visitor.locator('.sbw-input').fill('Добрый день! Есть ли доставка в Алматы?');
  await visitor.locator('.sbw-send').click();
  await visitor.locator('.sbw-ok').first().waitFor({ timeout: 10000 });

  // Live in the inbox (the rule sends it to Sales, Anna's team), with the web chat icon.
  const row = page.locator('.ticket', { hasText: 'Есть ли доставка' }).or(page.locator('.ticket .ch-webchat')).first();
  await row.waitFor({ timeout: 10000 });
  await row.click();
  await page.locator('.messages .message.in .text', { hasText: 'доставка в Алматы' }).waitFor();
  // The template by its shortcut typed in the reply box.
  await page.getByRole('textbox', { name: 'Ответить' }).fill('/hi');
  await page.getByRole('button', { name: 'Отправить' }).click();
  await visitor.getByText(/Здравствуйте, .*! Ваш запрос №\d+ у Anna\./).waitFor({ timeout: 10000 });
  await agentCtx.close();
  await visitorCtx.close();
});

test('collision guard, mentions, tags, assignment, tasks and files', async () => {
  const annaCtx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 800 } });
  // Record browser notifications instead of showing them.
  await annaCtx.grantPermissions(['notifications']);
  await annaCtx.addInitScript(() => {
    window.__notes = [];
    window.Notification = class {
      static permission = 'granted';
      static requestPermission() { return Promise.resolve('granted'); }
      constructor(title, opts) { window.__notes.push(title + ': ' + (opts && opts.body)); }
    };
  });
  const borisCtx = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 800 } });
  const anna = await signIn(base, annaCtx, 'anna@demo.switchboard', 'demo-anna-1');
  const boris = await signIn(base, borisCtx, 'boris@demo.switchboard', 'demo-boris-1', 'en');

  const r = await inbound({ external_id: 'ws-guard', from: { id: 'shop-77', name: 'Ерлан' }, text: 'Нужен счёт на оплату' });
  const n = r.ticket_number;
  // Boris (a supervisor) sees every ticket; Anna opens hers from "all tickets of the team".
  await boris.getByRole('button', { name: 'All', exact: true }).click();
  await boris.locator(`.ticket[data-number="${n}"]`).click();
  await anna.getByRole('button', { name: 'Моя команда' }).click();
  await anna.locator(`.ticket[data-number="${n}"]`).click();
  await anna.locator('.viewers', { hasText: 'Boris' }).waitFor({ timeout: 10000 });
  await anna.locator('.viewers', { hasText: 'тоже смотрит' }).waitFor();
  // Boris types: Anna sees it.
  await boris.getByRole('textbox', { name: 'Reply' }).pressSequentially('Hello', { delay: 20 });
  await anna.locator('.viewers', { hasText: 'печатает' }).waitFor({ timeout: 10000 });
  await boris.getByRole('textbox', { name: 'Reply' }).fill('');

  // Boris takes the ticket and mentions Anna in a note: she is told.
  await boris.getByRole('button', { name: 'Take it' }).click();
  await waitFor(async () => (await api('GET', `/api/v1/tickets/${n}`)).json.ticket.assignee_id !== null);
  await boris.getByRole('tab', { name: 'Note' }).click();
  // "@an" suggests Anna; picking her completes the handle.
  await boris.getByRole('textbox', { name: 'Note' }).fill('@an');
  await boris.getByRole('listbox', { name: 'Mention a colleague' }).getByRole('button', { name: /@anna/ }).click();
  await boris.getByRole('textbox', { name: 'Note' }).press('End');
  await boris.getByRole('textbox', { name: 'Note' }).pressSequentially('подготовь счёт, пожалуйста');
  await boris.getByRole('button', { name: 'Send' }).click();
  await waitFor(() => anna.evaluate((num) => window.__notes.some((x) => x.includes(`#${num}`)), n));
  // He gives it to Anna by the assignee list; she gets the assignment alert too.
  const annaId = (await api('GET', '/api/v1/agents')).json.agents.find((a) => a.email === 'anna@demo.switchboard').id;
  await boris.getByLabel('Assignee').selectOption(String(annaId));
  await waitFor(async () => (await api('GET', `/api/v1/tickets/${n}`)).json.ticket.assignee_id === annaId);
  await waitFor(() => anna.evaluate(() => window.__notes.some((x) => x.includes('назначено'))));

  // Anna: a tag, a call-back task, a file.
  await anna.getByLabel('Добавить метку').fill('счёт');
  await anna.getByLabel('Добавить метку').press('Enter');
  await waitFor(async () => (await api('GET', `/api/v1/tickets/${n}`)).json.ticket.tags.includes('счёт'));
  await anna.getByRole('button', { name: 'Задача' }).click();
  await anna.getByLabel('Вид задачи').selectOption('call_back');
  await anna.getByLabel('Что сделать').fill('Перезвонить Ерлану про счёт');
  await anna.getByRole('button', { name: 'Создать задачу' }).click();
  await anna.getByRole('textbox', { name: 'Ответить' }).fill('Счёт во вложении');
  await anna.locator('input[type=file]').setInputFiles({ name: 'счёт-42.txt', mimeType: 'text/plain', buffer: Buffer.from('Счёт №42') });
  await anna.getByRole('button', { name: 'Отправить' }).click();
  await anna.locator('.messages .attachments a', { hasText: 'счёт-42.txt' }).waitFor();
  const t = await api('GET', `/api/v1/tickets/${n}`);
  const sent = t.json.messages.find((m) => m.text === 'Счёт во вложении');
  assert.equal(sent.attachments[0].name, 'счёт-42.txt');
  const file = await fetch(base + sent.attachments[0].url, { headers: { Authorization: 'Bearer ' + admin } });
  assert.equal(await file.text(), 'Счёт №42');

  // The task list: the call back first, then done.
  await anna.getByRole('button', { name: 'Задачи' }).click();
  const task = anna.locator('.task.call_back', { hasText: 'Перезвонить Ерлану' });
  await task.waitFor();
  await task.getByRole('button', { name: `#${n}` }).waitFor();
  if (SHOTS) await anna.screenshot({ path: join(SHOTS, 'workspace-tasks.png') });
  await task.getByRole('button', { name: 'Готово' }).click();
  await task.waitFor({ state: 'detached' });
  assert.deepEqual([...anna.errors, ...boris.errors], []);
  await annaCtx.close();
  await borisCtx.close();
});

test('a phone-width screen shows the inbox', async () => {
  const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 390, height: 800 } });
  const page = await ctx.newPage();
  await page.goto(base + '/');
  await page.getByLabel('Email').fill('anna@demo.switchboard');
  await page.getByLabel('Password').fill('demo-anna-1');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Mine' }).waitFor();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no horizontal scrolling (page is ${width}px wide)`);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'workspace-phone.png') });
  await ctx.close();
});
