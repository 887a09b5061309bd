// The voice settings screens in a real browser (Debian's chromium driven by
// playwright-core): an admin sees the demo IVR menu, builds a submenu and a
// menu that leads to it, hangs the second under the demo menu, and is
// refused a fourth level with the API's message beside the option's menu
// picker; creates phone number 101 answered by the new menu, with a
// calendar and voicemail after hours (and an after-hours menu left empty is
// refused beside its picker); the stored documents are exactly what was
// built; deleting a menu still in use shows the API's 409; EN renders and
// nothing scrolls sideways at 360 px. SB_SCREENSHOTS=DIR saves a screenshot.
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
  await noSidewaysScroll(page);
  assert.deepEqual(errors, []);
  await ctx.close();
});
