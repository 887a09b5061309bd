// The incoming-call pop in a real browser against real phones: Anna signs in
// and goes online, her SIPp phone (extension 202) registers and answers
// after a few seconds of ringing; a caller (SIPp) dials the demo number 100
// and presses 1 (the Sales queue, Anna's team). A known customer's name,
// number and queue show while it rings, and a button opens their ticket;
// on the answer the banner says she is on the call and the ticket opens by
// itself (not while she types a reply); when the caller hangs up it goes.
// An unknown caller is a new customer. Also at 360 px, RU and EN.
// Needs sipp (sip-tester) on the PATH; SB_SOURCE_DIR names the source tree
// (tests/sip/*.xml), else it is found from this file; SB_CALLPOP_LOG=1 logs the
// daemon's voice lines (level info) to stderr.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiCall, signIn, signedInbound, start, waitFor } from './harness.mjs';

const SHOTS = process.env.SB_SCREENSHOTS;
const SRC = process.env.SB_SOURCE_DIR || resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const KNOWN = '79991234567';
const UNKNOWN = '77011234567';
const LONG = 60000; // the machine may be loaded: generous waits

let env, base, admin, sipPort, anna, tmp, audio;
let phone = null; // the phone's SIPp run: {proc, done}

/* Ports for SIPp as sbtest.free_port: blocks of four (SIP, RTP/RTCP at -mp..-mp+3) below
 * the kernel's ephemeral range, from an offset of this process's own, each checked free
 * for UDP and TCP, so that tests running at once do not race for a port. */
const PORT_LO = 20000, PORT_HI = 32000, BLOCK = 4;
let nextBlock = (process.pid * 89 + 1500) % ((PORT_HI - PORT_LO) / BLOCK);

function bindable(port, udp) {
  return new Promise((res) => {
    if (udp) {
      const u = createSocket('udp4');
      u.once('error', () => res(false));
      u.bind(port, '127.0.0.1', () => u.close(() => res(true)));
    } else {
      const t = createServer();
      t.once('error', () => res(false));
      t.listen(port, '127.0.0.1', () => t.close(() => res(true)));
    }
  });
}

async function freePort() {
  const nblocks = (PORT_HI - PORT_LO) / BLOCK;
  for (let i = 0; i < nblocks; i++) {
    const base = PORT_LO + nextBlock * BLOCK;
    nextBlock = (nextBlock + 1) % nblocks;
    let ok = true;
    for (let p = base; ok && p < base + BLOCK; p++) ok = (await bindable(p, true)) && (await bindable(p, false));
    if (ok) return base;
  }
  throw new Error('no free port');
}

/* SIPp with tests/sip/<scenario>.xml against the daemon, as sbtest._sipp_cmd:
 * {{name}} in the scenario is replaced by keys[name] (SIPp takes no keyword
 * where it expects a response code), and every key is passed with -key too.
 * Returns {proc, done}: done resolves to {code, out} when SIPp exits. */
async function sipp(scenario, service, keys = {}, { calls = 1, localPort, extra = [], timeout = 120 } = {}) {
  const all = { caller: '5551234', ...keys };
  const cwd = mkdtempSync(join(tmp, 'sipp-'));
  let text = readFileSync(join(SRC, 'tests', 'sip', `${scenario}.xml`), 'latin1');
  for (const [k, v] of Object.entries(all)) text = text.replaceAll(`{{${k}}}`, String(v));
  const xml = join(cwd, `${scenario}.xml`);
  writeFileSync(xml, text, 'latin1');
  const args = ['-sf', xml, `127.0.0.1:${sipPort}`, '-s', String(service), '-i', '127.0.0.1',
    '-p', String(localPort ?? (await freePort())), '-mp', String(await freePort()), '-m', String(calls), '-t', 'u1',
    '-nostdin', '-timeout', String(timeout), '-timeout_error', '-max_recv_loops', '1000'];
  for (const [k, v] of Object.entries(all)) args.push('-key', k, String(v));
  args.push(...extra);
  const proc = spawn('sipp', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out = (out + d).slice(-4000); });
  proc.stderr.on('data', (d) => { out = (out + d).slice(-4000); });
  const done = new Promise((res) => proc.on('exit', (code) => res({ code, out })));
  return { proc, done };
}

/* Registers Anna's phone (extension 202) on a port of its own, once. */
let phonePort;
async function registerPhone() {
  phonePort = await freePort();
  const reg = await (await sipp('register', 202, { expires: 3600, final: 200 },
    { localPort: phonePort, extra: ['-au', '202', '-ap', 'demo-sip-202'], timeout: 30 })).done;
  assert.equal(reg.code, 0, reg.out);
}

/* Anna's phone answers one call, which must come from `caller`, after
 * ringing ringMs (the scenario checks the caller, so one run per call). */
async function answerOne(caller, ringMs) {
  phone = await sipp('agent_uas', 202, { caller, ring_ms: ringMs, pt: 8, codec: '8 PCMA' },
    { localPort: phonePort, extra: ['-rtp_echo'], timeout: 180 });
}

/* Both ends are done and content. */
async function finished(caller) {
  const r = await caller;
  assert.equal(r.code, 0, 'caller: ' + r.out);
  const p = await phone.done;
  assert.equal(p.code, 0, 'phone: ' + p.out);
  phone = null;
}

/* A caller dials 100, presses 1 (Sales) and hangs up wait_ms after that. */
async function dial(caller, waitMs) {
  return (await sipp('caller_queue', '100', { digit: '1', caller, wait_ms: waitMs, audio }, { timeout: 120 })).done;
}

/* A test that, when it fails, also tells what the phone and the caller saw. */
function callTest(name, fn) {
  test(name, async () => {
    const run = { caller: null };
    try {
      await fn(run);
    } catch (e) {
      if (phone && phone.proc.exitCode === null) phone.proc.kill();
      const [c, p] = await Promise.all([
        run.caller ? Promise.race([run.caller, new Promise((r) => setTimeout(() => r({ out: '(still running)' }), 5000))]) : null,
        phone?.done,
      ]);
      phone = null;
      e.message += `\n--- caller ---\n${c?.out ?? ''}\n--- phone ---\n${p?.out ?? ''}`;
      throw e;
    }
  });
}

/* Anna online (the presence API, as an admin). */
async function online() {
  const r = await apiCall(base, admin, 'POST', `/api/v1/agents/${anna}/presence`, { presence: 'online' });
  assert.equal(r.status, 200);
}

async function newPage(size, lang = 'ru') {
  const ctx = await env.browser.newContext({ locale: lang === 'ru' ? 'ru-RU' : 'en-US', viewport: size });
  const page = await signIn(base, ctx, 'anna@demo.switchboard', 'demo-anna-1', lang);
  page.on('console', (m) => {
    if (m.type() === 'error') page.errors.push('console: ' + m.text()); // CSP refusals land here
  });
  return { ctx, page };
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sb-callpop-'));
  audio = join(tmp, 'alaw.raw'); // raw PCMA for SIPp's rtp_stream: any bytes are audio
  writeFileSync(audio, Buffer.from(Array.from({ length: 256 * 64 }, (_, i) => i % 256)));
  sipPort = await freePort();
  env = await start({
    ini: `${process.env.SB_CALLPOP_LOG ? '[log]\nlevel = info\n' : ''}[sip]\nlisten = 127.0.0.1:${sipPort}\nno_media_seconds = 30\nring_timeout_seconds = 30\nqueue_max_wait_seconds = 90\n`,
  });
  base = env.base;
  admin = env.cli(['token', 'create', '--agent', 'admin@demo.switchboard']).split('\n').pop().trim();
  const agents = await apiCall(base, admin, 'GET', '/api/v1/agents');
  assert.equal(agents.status, 200);
  anna = agents.json.agents.find((a) => a.email === 'anna@demo.switchboard').id;
  await registerPhone();
});

after(async () => {
  if (phone && phone.proc.exitCode === null) {
    phone.proc.kill();
    await phone.done;
  }
  await env?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

callTest('a known customer calls: their name while it rings, their ticket on the answer, gone after', async (run) => {
  // the customer wrote before: a contact with this phone and a ticket
  const secret = env.cli(['channel', 'secret', '1']);
  const ing = await signedInbound(base, secret, {
    external_id: 'callpop-1', from: { id: 'cp1', phone: '+' + KNOWN, name: 'Мария Петрова' }, text: 'Жду звонка',
  });
  assert.ok(ing.ticket_number);

  const { ctx, page } = await newPage({ width: 1280, height: 800 });
  // online from the workspace's own control
  const set = page.waitForResponse((r) => r.url().endsWith(`/api/v1/agents/${anna}/presence`) && r.status() === 200);
  await page.locator('select[name=presence]').selectOption('online');
  await set;
  // the phone rings 5 s, then answers; the caller hangs up 14 s after pressing 1
  await answerOne(KNOWN, 5000);
  const caller = (run.caller = dial(KNOWN, 14000));

  const pop = page.locator('.callpop');
  await pop.filter({ hasText: 'Входящий звонок' }).waitFor({ timeout: LONG });
  const status = page.getByRole('status', { name: 'Звонки' });
  assert.equal(await status.getAttribute('aria-live'), 'polite');
  assert.equal(await pop.count(), 1);
  assert.equal(await pop.locator('.callpop-name').textContent(), 'Мария Петрова');
  assert.equal(await pop.locator('.callpop-number').textContent(), '+7 999 123-45-67');
  await pop.getByText('Очередь: Sales').waitFor();
  const open = pop.getByRole('button', { name: /^Открыть карточку/ });
  assert.equal(await open.textContent(), `Открыть карточку #${ing.ticket_number}`);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'callpop-ringing.png') });

  // answered: on the call, a timer, and the ticket with the customer's card opened by itself
  await pop.filter({ hasText: 'Разговор' }).waitFor({ timeout: LONG });
  await waitFor(async () => (await page.evaluate(() => location.hash)) === `#/t/${ing.ticket_number}`, LONG);
  await page.locator('aside.card').filter({ hasText: 'Мария Петрова' }).waitFor({ timeout: LONG });
  const timer = pop.getByRole('timer');
  assert.match(await timer.textContent(), /^\d+:\d\d$/);
  const t0 = await timer.textContent();
  await waitFor(async () => (await timer.textContent()) !== t0, 10000); // it runs
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'callpop-talking.png') });

  // the caller hangs up: the banner goes, the ticket stays
  await finished(caller);
  await waitFor(async () => (await pop.count()) === 0, LONG);
  assert.equal(await page.evaluate(() => location.hash), `#/t/${ing.ticket_number}`);
  const calls = await apiCall(base, admin, 'GET', '/api/v1/calls');
  assert.equal(calls.json.calls[0].status, 'answered');
  assert.equal(calls.json.calls[0].agent_id, anna);
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

callTest('an unknown caller is a new customer (360 px, English); a reply being typed keeps its focus', async (run) => {
  const { ctx, page } = await newPage({ width: 360, height: 740 }, 'en');
  await online();
  // Anna is typing a reply in a ticket of hers
  const list = await apiCall(base, admin, 'GET', '/api/v1/tickets?limit=1');
  const number = list.json.tickets[0].number;
  await page.evaluate((n) => { location.hash = `#/t/${n}`; }, number);
  const box = page.locator('.composer textarea');
  await box.waitFor({ timeout: LONG });
  await box.fill('Hello, I am checking');
  await box.focus();

  await answerOne(UNKNOWN, 5000);
  const caller = (run.caller = dial(UNKNOWN, 12000));
  const pop = page.locator('.callpop');
  await pop.filter({ hasText: 'Incoming call' }).waitFor({ timeout: LONG });
  assert.equal(await pop.locator('.callpop-name').textContent(), 'New customer');
  assert.equal(await pop.locator('.callpop-number').textContent(), '+7 701 123-45-67');
  assert.equal(await pop.getByRole('button', { name: /^Open card/ }).count(), 0);
  // it fits the narrow screen
  const box1 = await pop.boundingBox();
  assert.ok(box1.x >= 0 && box1.x + box1.width <= 360, JSON.stringify(box1));
  assert.equal(await pop.evaluate((el) => el.scrollWidth <= el.clientWidth), true);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'callpop-narrow.png') });

  await pop.filter({ hasText: 'On the call' }).waitFor({ timeout: LONG });
  await pop.getByRole('timer').waitFor();
  // nothing to open, and the reply being typed keeps its focus and its text
  assert.equal(await page.evaluate(() => location.hash), `#/t/${number}`);
  assert.equal(await box.evaluate((el) => document.activeElement === el), true);
  assert.equal(await box.inputValue(), 'Hello, I am checking');

  await finished(caller);
  await waitFor(async () => (await pop.count()) === 0, LONG);
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

callTest('a known customer calls while a reply is being typed: the card waits for the button', async (run) => {
  const { ctx, page } = await newPage({ width: 1280, height: 800 });
  await online();
  const other = (await signedInbound(base, env.cli(['channel', 'secret', '1']), {
    external_id: 'callpop-2', from: { id: 'cp2', name: 'Иван' }, text: 'Вопрос',
  })).ticket_number;
  await page.evaluate((n) => { location.hash = `#/t/${n}`; }, other);
  const box = page.locator('.composer textarea');
  await box.waitFor({ timeout: LONG });
  await box.fill('Иван, добрый день');
  await box.focus();

  await answerOne(KNOWN, 5000);
  const caller = (run.caller = dial(KNOWN, 12000));
  const pop = page.locator('.callpop');
  await pop.filter({ hasText: 'Разговор' }).waitFor({ timeout: LONG });
  await page.waitForTimeout(1000);
  assert.equal(await page.evaluate(() => location.hash), `#/t/${other}`);
  assert.equal(await box.evaluate((el) => document.activeElement === el), true);
  // the agent opens the card when ready
  const open = pop.getByRole('button', { name: /^Открыть карточку/ });
  const number = Number((await open.textContent()).match(/#(\d+)$/)[1]);
  assert.notEqual(number, other);
  await open.click();
  await waitFor(async () => (await page.evaluate(() => location.hash)) === `#/t/${number}`, LONG);
  await page.locator('aside.card').filter({ hasText: 'Мария Петрова' }).waitFor({ timeout: LONG });

  await finished(caller);
  await waitFor(async () => (await pop.count()) === 0, LONG);
  assert.deepEqual(page.errors, []);
  await ctx.close();
});
