// The voice settings screens in a real browser (Debian's chromium driven by
// playwright-core): an admin sees the demo IVR menu, builds a submenu and a
// menu that leads to it, hangs the second under the demo menu, and is
// refused a fourth level with the API's message beside the option's menu
// picker; creates phone number 101 answered by the new menu, with a
// calendar and voicemail after hours (and an after-hours menu left empty is
// refused beside its picker); the stored documents are exactly what was
// built; deleting a menu still in use shows the API's 409; EN renders and
// nothing scrolls sideways at 360 px. A forwarding scheme of two steps is
// built (a bad phone number refused beside its input), number 102 points
// at it in and after business hours, the documents are exactly what was
// built, and the scheme in use is not deleted. SB_SCREENSHOTS=DIR saves
// screenshots.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { apiCall, signIn, start, waitFor } from './harness.mjs';

const SHOTS = process.env.SB_SCREENSHOTS;
let env, base, admin, browser, calendar;

const api = (method, path, body) => apiCall(base, admin, method, path, body);

async function signInAsAdmin(ctx, lang) {
  const page = await signIn(base, ctx, 'admin@demo.switchboard', 'demo-admin-1', lang);
  await page.getByRole('button', { name: lang === 'ru' ? 'Настройки' : 'Settings', exact: true }).click();
  return { page, errors: page.errors };
}

function section(page, lang, name) {
  return page.getByRole('navigation', { name: lang === 'ru' ? 'Разделы настроек' : 'Settings sections' })
    .getByRole('button', { name, exact: true }).click();
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

async function saved(page) {
  await page.getByRole('status').filter({ hasText: 'Сохранено' }).waitFor();
}

before(async () => {
  env = await start();
  ({ base, browser } = env);
  admin = env.cli(['token', 'create', '--agent', 'admin@demo.switchboard']);
  const r = await api('POST', '/api/v1/calendars', {
    name: 'Офис', time_zone: 'Europe/Moscow', hours: { mon: [['09:00', '18:00']], tue: [['09:00', '18:00']] },
  });
  assert.equal(r.status, 201);
  calendar = r.json.calendar.id;
});

after(async () => {
  await env?.stop();
});

test('an admin builds IVR menus and a phone number; depth and in-use deletes are refused in place', async () => {
  const ctx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 900 } });
  const { page, errors } = await signInAsAdmin(ctx, 'ru');
  await section(page, 'ru', 'Голосовое меню');
  await page.getByRole('heading', { name: 'Голосовое меню' }).waitFor();

  // The demo menu, its keys named by where they lead.
  const demo = page.locator('li[data-menu="1"]');
  await demo.waitFor();
  const demoText = await demo.textContent();
  assert.match(demoText, /Main menu \/ Главное меню/);
  assert.match(demoText, /1 → Sales/);
  assert.match(demoText, /2 → Support/);

  // A submenu: 1 → Support's queue, 9 → back. Without a prompt it is
  // refused beside the prompt field.
  await page.getByRole('button', { name: 'Новое меню' }).click();
  await page.getByLabel('Название', { exact: true }).fill('Поддержка: подменю');
  await page.getByRole('button', { name: 'Добавить клавишу' }).click();
  assert.equal(await page.getByLabel('Вариант 1: Клавиша').inputValue(), '1');
  assert.equal(await page.getByLabel('Вариант 1: Действие').inputValue(), 'queue');
  await page.getByLabel('Вариант 1: Команда').selectOption({ label: 'Support' });
  await page.getByRole('button', { name: 'Добавить клавишу' }).click();
  await page.getByLabel('Вариант 2: Клавиша').selectOption('9');
  await page.getByLabel('Вариант 2: Действие').selectOption('back');
  await page.getByRole('button', { name: 'Создать' }).click();
  const prompt = page.getByLabel('Запись приветствия (имя)');
  assert.match(await errorOf(prompt), /is required/);
  await prompt.fill('menu_support');
  await page.getByRole('button', { name: 'Создать' }).click();
  await saved(page);
  await page.locator('.items li', { hasText: 'Поддержка: подменю' }).waitFor();

  // A second menu leading to it: 1 → the submenu, 0 → the operator,
  // extension dialing, 7 s to choose.
  await page.getByRole('button', { name: 'Новое меню' }).click();
  await page.getByLabel('Название', { exact: true }).fill('Второе меню');
  await page.getByLabel('Запись приветствия (имя)').fill('menu_second');
  await page.getByRole('button', { name: 'Добавить клавишу' }).click();
  await page.getByLabel('Вариант 1: Действие').selectOption('submenu');
  await page.getByLabel('Вариант 1: Меню').selectOption({ label: 'Поддержка: подменю' });
  await page.getByRole('button', { name: 'Добавить клавишу' }).click();
  await page.getByLabel('Вариант 2: Клавиша').selectOption('0');
  await page.getByLabel('Вариант 2: Действие').selectOption('operator');
  await page.getByLabel(/Набор добавочного номера/).check();
  await page.getByLabel('Ждать выбора, секунд').fill('7');
  await page.getByRole('button', { name: 'Создать' }).click();
  await saved(page);
  await page.locator('.items li', { hasText: 'Второе меню' }).waitFor();

  // Under the demo menu: 3 → the second menu (three levels: allowed).
  await page.getByRole('button', { name: 'Изменить: Main menu / Главное меню' }).click();
  assert.equal(await page.getByLabel('Вариант 1: Команда').inputValue(), '1');
  await page.getByRole('button', { name: 'Добавить клавишу' }).click();
  assert.equal(await page.getByLabel('Вариант 4: Клавиша').inputValue(), '3');
  await page.getByLabel('Вариант 4: Действие').selectOption('submenu');
  await page.getByLabel('Вариант 4: Меню').selectOption({ label: 'Второе меню' });
  await page.getByRole('button', { name: 'Сохранить' }).click();
  await saved(page);

  // A menu above the demo menu would be a fourth level: refused, and the
  // message is beside that option's menu picker.
  await page.getByRole('button', { name: 'Новое меню' }).click();
  await page.getByLabel('Название', { exact: true }).fill('Слишком глубоко');
  await page.getByLabel('Запись приветствия (имя)').fill('menu_deep');
  await page.getByRole('button', { name: 'Добавить клавишу' }).click();
  await page.getByLabel('Вариант 1: Действие').selectOption('submenu');
  const deep = page.getByLabel('Вариант 1: Меню');
  await deep.selectOption({ label: 'Main menu / Главное меню' });
  await page.getByRole('button', { name: 'Создать' }).click();
  assert.match(await errorOf(deep), /menus would nest 4 levels deep .*at most 3 are allowed/);
  await waitFor(() => deep.evaluate((el) => el === document.activeElement)); // and focused
  await page.getByRole('button', { name: 'Отмена' }).click();

  // Stored exactly as built (the demo menu keeps what it had).
  const menus = (await api('GET', '/api/v1/ivr-menus')).json.ivr_menus;
  assert.equal(menus.length, 3);
  const sub = menus.find((m) => m.name === 'Поддержка: подменю');
  const second = menus.find((m) => m.name === 'Второе меню');
  assert.deepEqual(sub, {
    id: sub.id, name: 'Поддержка: подменю', prompt: 'menu_support',
    options: [{ digit: '1', action: 'queue', team_id: 2 }, { digit: '9', action: 'back' }],
  });
  assert.deepEqual(second, {
    id: second.id, name: 'Второе меню', prompt: 'menu_second', extension_dialing: true, timeout_seconds: 7,
    options: [{ digit: '1', action: 'submenu', menu_id: sub.id }, { digit: '0', action: 'operator' }],
  });
  assert.deepEqual(menus.find((m) => m.id === 1), {
    id: 1, name: 'Main menu / Главное меню', prompt: 'menu_main', extension_dialing: true, interdigit_seconds: 2,
    options: [
      { digit: '1', action: 'queue', team_id: 1 },
      { digit: '2', action: 'queue', team_id: 2 },
      { digit: '0', action: 'operator' },
      { digit: '3', action: 'submenu', menu_id: second.id },
    ],
  });

  // Phone number 101: the second menu answers; with the calendar, after
  // hours go to Support's voicemail (an empty after-hours menu is refused
  // beside its picker first).
  await section(page, 'ru', 'Номера');
  await page.locator('li[data-number="1"]', { hasText: '100' }).waitFor();
  await page.getByRole('button', { name: 'Новый номер' }).click();
  await page.getByLabel('Номер (цифры, которые набирают)').fill('101');
  await page.getByLabel('Название', { exact: true }).fill('Линия поддержки');
  assert.equal(await page.getByLabel('Кто отвечает: Действие').inputValue(), 'menu');
  await page.getByLabel('Кто отвечает: Меню').selectOption({ label: 'Второе меню' });
  await page.getByLabel('Рабочее время (календарь)').selectOption({ label: 'Офис' });
  await page.getByLabel('В нерабочее время: Действие').selectOption('menu');
  await page.getByRole('button', { name: 'Создать' }).click();
  const afterMenu = page.getByLabel('В нерабочее время: Меню');
  assert.match(await errorOf(afterMenu), /is required/);
  await page.getByLabel('В нерабочее время: Действие').selectOption('voicemail');
  await page.getByLabel('В нерабочее время: Команда').selectOption({ label: 'Support' });
  await page.getByLabel('В нерабочее время: Запись перед этим (имя)').fill('closed');
  // every call an agent answers on this number is rated by the caller (off by default)
  const rating = page.getByLabel('Просить клиента оценить разговор');
  assert.equal(await rating.isChecked(), false);
  assert.match(await rating.getAttribute('aria-describedby'), /-hint$/);
  await rating.check();
  await page.getByRole('button', { name: 'Создать' }).click();
  await saved(page);
  const line = page.locator('.items li', { hasText: '101' });
  await line.waitFor();
  assert.match(await line.textContent(), /Второе меню/);

  const numbers = (await api('GET', '/api/v1/numbers')).json.numbers;
  const n101 = numbers.find((n) => n.number === '101');
  assert.deepEqual(n101, {
    id: n101.id, name: 'Линия поддержки', number: '101', language: 'ru',
    entry: { action: 'menu', menu_id: second.id },
    calendar_id: calendar,
    after_hours: { action: 'voicemail', team_id: 2, prompt: 'closed' },
    rating: true,
  });

  // Deleting the submenu the second menu uses: the API's 409, on screen.
  await section(page, 'ru', 'Голосовое меню');
  await page.getByRole('button', { name: 'Удалить: Поддержка: подменю' }).click();
  await page.getByRole('button', { name: 'Да', exact: true }).click();
  const alert = page.getByRole('alert').filter({ hasText: `IVR menu ${sub.id} is used by IVR menu ${second.id}` });
  await alert.waitFor();
  assert.equal((await api('GET', `/api/v1/ivr-menus/${sub.id}`)).status, 200);

  await page.getByRole('button', { name: 'Изменить: Второе меню' }).click();
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'settings-ivr.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('the voice screens in English at phone width', async () => {
  const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 360, height: 740 } });
  const { page, errors } = await signInAsAdmin(ctx, 'en');
  await section(page, 'en', 'IVR menus');
  await page.getByRole('heading', { name: 'IVR menus' }).waitFor();
  await page.locator('li[data-menu="1"]', { hasText: '2 → Support' }).waitFor();
  await noSidewaysScroll(page);
  await page.getByRole('button', { name: 'Edit: Main menu / Главное меню' }).click();
  assert.equal(await page.getByLabel('Option 1: Action').inputValue(), 'queue');
  assert.equal(await page.getByLabel('Option 1: Team').inputValue(), '1');
  await page.getByLabel('When nothing is chosen: Action').selectOption('voicemail');
  await page.getByLabel('When nothing is chosen: Team').waitFor();
  await noSidewaysScroll(page);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'settings-ivr-phone.png'), fullPage: true });
  await page.getByRole('button', { name: 'Cancel' }).click();

  await section(page, 'en', 'Phone numbers');
  await page.getByRole('button', { name: 'Edit: Demo line / Демо-линия' }).click();
  assert.equal(await page.getByLabel('What answers: Action').inputValue(), 'menu');
  assert.equal(await page.getByLabel('What answers: Menu').inputValue(), '1');
  assert.equal(await page.getByLabel('Operator (where “0” in a menu goes): Team').inputValue(), '2');
  await page.getByLabel('Business hours (calendar)').selectOption({ label: 'Офис' });
  await page.getByLabel('After hours: Action').waitFor();
  assert.equal(await page.getByLabel('Ask the caller to rate the call').isChecked(), false); // the demo line's
  await noSidewaysScroll(page);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('an admin builds a two-step forwarding scheme and points a number at it', async () => {
  const ctx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 900 } });
  const { page, errors } = await signInAsAdmin(ctx, 'ru');
  await section(page, 'ru', 'Переадресация');
  await page.getByRole('heading', { name: 'Переадресация' }).waitFor();
  await page.getByText('Схем переадресации пока нет.').waitFor();

  // Step 1: Anna and Boris at once, 15 s (the default).
  await page.getByRole('button', { name: 'Новая схема' }).click();
  await page.getByLabel('Название', { exact: true }).fill('Продажи: два шага');
  assert.equal(await page.getByLabel('Шаг 1: Как звонить').inputValue(), 'together');
  assert.equal(await page.getByLabel('Шаг 1: Секунд').inputValue(), '15');
  assert.equal(await page.getByLabel('Шаг 1, цель 1: Кому').inputValue(), 'agent');
  await page.getByLabel('Шаг 1, цель 1: Оператор').selectOption({ label: 'Anna Sales / Анна Продажи' });
  await page.getByRole('button', { name: 'Добавить цель: Шаг 1' }).click();
  await page.getByLabel('Шаг 1, цель 2: Оператор').selectOption({ label: 'Boris Support / Борис Поддержка' });

  // Step 2: the Sales team, then a phone number, one after another, 20 s each.
  await page.getByRole('button', { name: 'Добавить шаг' }).click();
  await page.getByLabel('Шаг 2: Как звонить').selectOption('sequential');
  await page.getByLabel('Шаг 2: Секунд').fill('20');
  await page.getByLabel('Шаг 2, цель 1: Кому').selectOption('team');
  await page.getByLabel('Шаг 2, цель 1: Команда').selectOption({ label: 'Sales' });
  await page.getByRole('button', { name: 'Добавить цель: Шаг 2' }).click();
  await page.getByLabel('Шаг 2, цель 2: Кому').selectOption('number');
  const phone = page.getByLabel('Шаг 2, цель 2: Номер телефона');
  await phone.fill('+7 (495) 123-45-67');
  await page.getByLabel('Если никто не ответил: Действие').selectOption('voicemail');
  await page.getByLabel('Если никто не ответил: Команда').selectOption({ label: 'Sales' });

  // The number as typed is refused beside its input, which gets the focus.
  await page.getByRole('button', { name: 'Создать' }).click();
  assert.match(await errorOf(phone), /must be a phone number: 1 to 20 digits/);
  await waitFor(() => phone.evaluate((el) => el === document.activeElement));
  await phone.fill('+74951234567');
  await page.getByRole('button', { name: 'Создать' }).click();
  await saved(page);
  const row = page.locator('.items li', { hasText: 'Продажи: два шага' });
  await row.waitFor();
  assert.match(await row.textContent(), /Anna Sales \/ Анна Продажи, Boris Support \/ Борис Поддержка · 15 с → Sales, \+74951234567 · 20 с · по очереди → затем: голосовая почта: Sales/);

  // Stored exactly as built: no backup (it is the final then).
  const agents = (await api('GET', '/api/v1/agents')).json.agents;
  const id = (name) => agents.find((a) => a.name === name).id;
  const schemes = (await api('GET', '/api/v1/forwarding-schemes')).json.forwarding_schemes;
  assert.equal(schemes.length, 1);
  const scheme = schemes[0];
  assert.deepEqual(scheme, {
    id: scheme.id, name: 'Продажи: два шага',
    steps: [
      { targets: [{ agent: id('Anna Sales / Анна Продажи') }, { agent: id('Boris Support / Борис Поддержка') }], mode: 'together', seconds: 15 },
      { targets: [{ team: 1 }, { number: '+74951234567' }], mode: 'sequential', seconds: 20 },
    ],
    final: { action: 'voicemail', team_id: 1 },
  });

  // Number 102 answered by the scheme, and after hours too, after "closed".
  await section(page, 'ru', 'Номера');
  await page.getByRole('button', { name: 'Новый номер' }).click();
  await page.getByLabel('Номер (цифры, которые набирают)').fill('102');
  await page.getByLabel('Название', { exact: true }).fill('Линия продаж');
  await page.getByLabel('Кто отвечает: Действие').selectOption('scheme');
  await page.getByLabel('Кто отвечает: Схема переадресации').selectOption({ label: 'Продажи: два шага' });
  await page.getByLabel('Рабочее время (календарь)').selectOption({ label: 'Офис' });
  await page.getByLabel('В нерабочее время: Действие').selectOption('scheme');
  await page.getByLabel('В нерабочее время: Схема переадресации').selectOption({ label: 'Продажи: два шага' });
  await page.getByLabel('В нерабочее время: Запись перед этим (имя)').fill('closed');
  // a scheme never answers "0": the operator does not offer it
  const operatorActions = await page.getByLabel('Оператор (куда ведёт «0» в меню): Действие').locator('option').allTextContents();
  assert.ok(!operatorActions.includes('Схема переадресации'), operatorActions.join());
  await page.getByRole('button', { name: 'Создать' }).click();
  await saved(page);
  const line = page.locator('.items li', { hasText: '102' });
  await line.waitFor();
  assert.match(await line.textContent(), /→ Схема переадресации: Продажи: два шага/);
  const n102 = (await api('GET', '/api/v1/numbers')).json.numbers.find((n) => n.number === '102');
  assert.deepEqual(n102, {
    id: n102.id, name: 'Линия продаж', number: '102', language: 'ru',
    entry: { action: 'scheme', scheme_id: scheme.id },
    calendar_id: calendar,
    after_hours: { action: 'scheme', scheme_id: scheme.id, prompt: 'closed' },
  });

  // The scheme in use is not deleted: the API's 409, on screen.
  await section(page, 'ru', 'Переадресация');
  await page.getByRole('button', { name: 'Удалить: Продажи: два шага' }).click();
  await page.getByRole('button', { name: 'Да', exact: true }).click();
  await page.getByRole('alert').filter({ hasText: `forwarding scheme ${scheme.id} is used by phone number ${n102.id}` }).waitFor();
  assert.equal((await api('GET', `/api/v1/forwarding-schemes/${scheme.id}`)).status, 200);

  // Opened again, the editor shows what is stored.
  await page.getByRole('button', { name: 'Изменить: Продажи: два шага' }).click();
  assert.equal(await page.getByLabel('Шаг 2: Как звонить').inputValue(), 'sequential');
  assert.equal(await page.getByLabel('Шаг 2, цель 2: Номер телефона').inputValue(), '+74951234567');
  assert.equal(await page.getByLabel('Шаг 1, цель 2: Оператор').inputValue(), String(id('Boris Support / Борис Поддержка')));
  await noSidewaysScroll(page);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'settings-schemes.png'), fullPage: true });
  await page.getByRole('button', { name: 'Отмена' }).click();
  assert.deepEqual(errors, []);
  await ctx.close();

  // In English at phone width.
  const ctx2 = await browser.newContext({ locale: 'en-US', viewport: { width: 360, height: 740 } });
  const en = await signInAsAdmin(ctx2, 'en');
  await section(en.page, 'en', 'Forwarding schemes');
  await en.page.locator(`li[data-scheme="${scheme.id}"]`, { hasText: '20 s · one after another → then: voicemail: Sales' }).waitFor();
  await noSidewaysScroll(en.page);
  await en.page.getByRole('button', { name: 'Edit: Продажи: два шага' }).click();
  assert.equal(await en.page.getByLabel('Step 2, target 1: Who').inputValue(), 'team');
  assert.equal(await en.page.getByLabel('Step 2, target 1: Team').inputValue(), '1');
  assert.equal(await en.page.getByLabel('When nobody can be reached (no one registered, no trunk): Action').inputValue(), '');
  await noSidewaysScroll(en.page);
  if (SHOTS) await en.page.screenshot({ path: join(SHOTS, 'settings-schemes-phone.png'), fullPage: true });
  assert.deepEqual(en.errors, []);
  await ctx2.close();
});
