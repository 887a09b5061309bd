/*
 * Switchboard website chat widget.
 * Embed: <script src="https://HOST/widget.js" data-channel="ID" [data-lang="ru|en"] async></script>
 * Plain ES2017, no dependencies, no eval, no inline handlers (CSP-safe). Text from the network
 * is only ever inserted with textContent. API: window.Switchboard.open()/close()/identify({...}).
 */
(function () {
  'use strict';
  if (window.Switchboard && window.Switchboard.version) return; // loaded twice

  const script = document.currentScript || [].slice.call(document.querySelectorAll('script[data-channel][src]'))
    .filter((s) => /widget\.js([?#]|$)/.test(s.src)).pop();
  if (!script || !script.src) return console.warn('[switchboard] cannot find the widget <script> tag');
  const BASE = new URL(script.src, location.href).origin;   // the server = where widget.js came from
  const CHANNEL = String(script.getAttribute('data-channel') || '').trim();
  if (!CHANNEL) return console.warn('[switchboard] data-channel is missing');

  const MAX_LEN = 4000, COUNTER_FROM = 3600, ACK_TIMEOUT = 10000, PING_EVERY = 25000, DEAD_AFTER = 65000,
    CONNECT_TIMEOUT = 10000, TYPING_EVERY = 3000, AGENT_TYPING_MS = 5000;

  const forced = String(script.getAttribute('data-lang') || navigator.language || '').toLowerCase();
  const LANG = forced.indexOf('ru') === 0 ? 'ru' : 'en';
  const T = LANG === 'ru' ? {
    title: 'Напишите нам', open: 'Открыть чат', close: 'Закрыть чат', placeholder: 'Введите сообщение…',
    send: 'Отправить сообщение', sending: 'отправляется…', received: 'Получено',
    failed: 'не отправлено, нажмите, чтобы повторить', typing: '{name} печатает…', typingAnon: 'Оператор печатает…',
    connecting: 'Подключение…', reconnecting: 'Связь потеряна. Переподключаемся…',
    unavailable: 'Чат временно недоступен. Пробуем снова…',
    prechat: 'Представьтесь, пожалуйста, — так мы сможем помочь быстрее.', name: 'Имя', phone: 'Телефон',
    email: 'Эл. почта', start: 'Начать чат', required: 'Пожалуйста, укажите имя.',
    badEmail: 'Проверьте адрес эл. почты.', tooLong: 'Сообщение слишком длинное', support: 'Поддержка',
    unread: 'непрочитанных', messages: 'Сообщения',
    cbOpen: 'Перезвоните мне', cbIntro: 'Оставьте номер — мы позвоним вам.', cbPhone: 'Телефон',
    cbComment: 'Комментарий (необязательно)', cbSend: 'Жду звонка', cbBack: 'Вернуться в чат',
    cbNeedPhone: 'Укажите номер телефона.', cbBadPhone: 'Проверьте номер: например, +7 999 123-45-67.',
    cbRefused: 'Мы не можем перезвонить на этот номер.', cbBusy: 'Слишком много заявок. Попробуйте позже.',
    cbOff: 'Обратный звонок сейчас недоступен.', cbFail: 'Не удалось отправить заявку. Попробуйте ещё раз.',
    cbSoon: 'Спасибо! Мы перезвоним вам в ближайшее время.', cbLater: 'Спасибо! Сейчас мы не работаем — перезвоним {when}.',
    cbAgain: 'Заявка уже принята — мы перезвоним.'
  } : {
    title: 'Chat with us', open: 'Open chat', close: 'Close chat', placeholder: 'Type a message…',
    send: 'Send message', sending: 'sending…', received: 'Received', failed: 'not sent, tap to retry',
    typing: '{name} is typing…', typingAnon: 'Agent is typing…', connecting: 'Connecting…',
    reconnecting: 'Connection lost. Reconnecting…', unavailable: 'Chat is temporarily unavailable. Retrying…',
    prechat: 'Please introduce yourself so we can help you faster.', name: 'Name', phone: 'Phone',
    email: 'Email', start: 'Start chat', required: 'Please enter your name.',
    badEmail: 'Please check the email address.', tooLong: 'Message is too long', support: 'Support',
    unread: 'unread', messages: 'Messages',
    cbOpen: 'Call me back', cbIntro: 'Leave your number and we will call you.', cbPhone: 'Phone',
    cbComment: 'Comment (optional)', cbSend: 'Call me', cbBack: 'Back to chat',
    cbNeedPhone: 'Please enter your phone number.', cbBadPhone: 'Please check the number, e.g. +44 20 7946 0958.',
    cbRefused: 'We cannot call this number back.', cbBusy: 'Too many requests. Please try later.',
    cbOff: 'Call-back is not available now.', cbFail: 'The request was not sent. Please try again.',
    cbSoon: 'Thank you! We will call you shortly.', cbLater: 'Thank you! We are closed now and will call you {when}.',
    cbAgain: 'Your request is already with us: we will call you.'
  };

  /* ---------- visitor token: localStorage of the host page, cookie fallback ---------- */
  const KEY = 'sbchat_' + (new URL(BASE).host + '_' + CHANNEL).replace(/[^A-Za-z0-9]/g, '_');
  const store = {
    get() {
      try { const v = localStorage.getItem(KEY); if (v) return v; } catch (e) { /* blocked */ }
      const m = document.cookie.match(new RegExp('(?:^|;\\s*)' + KEY + '=([^;]*)'));
      try { return m ? decodeURIComponent(m[1]) : ''; } catch (e) { return ''; }
    },
    set(v) {
      try { localStorage.setItem(KEY, v); if (localStorage.getItem(KEY) === v) return; } catch (e) { /* blocked */ }
      document.cookie = KEY + '=' + encodeURIComponent(v) + '; max-age=31536000; path=/; SameSite=Lax' +
        (location.protocol === 'https:' ? '; Secure' : '');
    }
  };

  const S = {
    config: null, token: store.get(), profile: {}, prechatDone: false, hadSession: false,
    msgs: [], byId: new Map(), byCid: new Map(), // msgs: sorted by server id, unacked (id == null) last
    isOpen: false, wantOpen: false, unread: 0, started: false, connected: false, transport: null,
    ws: null, es: null, useSSE: !window.WebSocket, wsFails: 0, attempt: 0, connectedAt: 0, lastRx: 0,
    reconnectTimer: 0, pingTimer: 0, connectTimer: 0, statusTimer: 0, typingTimer: 0, lastTypingSent: 0,
    sessionChain: Promise.resolve()
  };
  const ui = {};

  /* ---------- helpers ---------- */
  // h('div', {class, text, hidden, 'aria-label', onclick, ...}, [children]); text always via textContent
  function h(tag, props, kids) {
    const e = document.createElement(tag);
    Object.keys(props || {}).forEach((k) => {
      const v = props[k];
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = String(v);
      else if (k.indexOf('on') === 0) e.addEventListener(k.slice(2), v);
      else if (k === 'role' || k.indexOf('-') > 0) e.setAttribute(k, v);
      else e[k] = v;
    });
    (kids || []).forEach((c) => c && e.appendChild(c));
    return e;
  }
  function icon(d) {
    const NS = 'http://www.w3.org/2000/svg', s = document.createElementNS(NS, 'svg'), p = document.createElementNS(NS, 'path');
    s.setAttribute('viewBox', '0 0 24 24'); s.setAttribute('aria-hidden', 'true'); s.setAttribute('focusable', 'false');
    p.setAttribute('d', d); p.setAttribute('fill', 'currentColor');
    s.appendChild(p);
    return s;
  }
  function newId() {
    const b = new Uint8Array(16);
    if (window.crypto && crypto.getRandomValues) crypto.getRandomValues(b);
    else for (let i = 0; i < 16; i++) b[i] = Math.random() * 256;
    return [].map.call(b, (x) => (x + 256).toString(16).slice(1)).join('');
  }
  const enc = encodeURIComponent;
  const qs = () => '?channel=' + enc(CHANNEL) + '&token=' + enc(S.token);
  const str = (v) => (v == null ? '' : String(v).trim().slice(0, 200));
  function toId(v) { const n = Number(v); return v == null || v === '' || !isFinite(n) ? null : n; }

  // fetch JSON; throws Error{status (0 = network), code, message, retryAfter (ms)}
  async function api(method, path, body) {
    const opts = { method, mode: 'cors', credentials: 'omit', cache: 'no-store', headers: {} };
    if (body !== undefined) { opts.headers['Content-Type'] = 'application/json'; opts.body = JSON.stringify(body); }
    const ac = window.AbortController && new AbortController();
    if (ac) opts.signal = ac.signal;
    const timer = setTimeout(() => ac && ac.abort(), 20000);
    let res, data = null;
    try {
      res = await fetch(BASE + path, opts);
      data = await res.json().catch(() => null);
    } catch (e) {
      res = null;
    } finally { clearTimeout(timer); }
    if (res && res.ok) return data || {};
    const err = (data && data.error) || {}, e = new Error(err.message || err.code || 'network error');
    e.status = res ? res.status : 0; e.code = err.code || ''; e.field = err.field || '';
    const ra = res && res.headers.get('Retry-After');
    e.retryAfter = !ra ? 0 : isFinite(ra) ? ra * 1000 : Math.max(0, (Date.parse(ra) || 0) - Date.now());
    throw e;
  }

  /* ---------- styles (inside the shadow root; every class is sbw- prefixed for the no-shadow fallback) ---------- */
  const CSS = `
:host{all:initial}
.sbw-root{font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1a202c;--sbw-accent:#2b6cb0;--sbw-fg:#fff}
.sbw-root *,.sbw-root *::before,.sbw-root *::after{box-sizing:border-box;margin:0;padding:0;border:0;font:inherit;color:inherit;background:none;text-align:left;line-height:inherit;letter-spacing:normal;text-transform:none}
.sbw-root [hidden]{display:none!important}
.sbw-root button{cursor:pointer;-webkit-appearance:none;appearance:none}
.sbw-root :focus-visible{outline:2px solid var(--sbw-accent);outline-offset:2px}
.sbw-root .sbw-panel:focus{outline:none}
.sbw-launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:58px;height:58px;border-radius:50%;background:var(--sbw-accent);color:var(--sbw-fg);display:flex;align-items:center;justify-content:center;box-shadow:0 6px 20px rgba(0,0,0,.25)}
.sbw-launcher svg{width:28px;height:28px}
.sbw-badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 5px;border-radius:10px;background:#e53e3e;color:#fff;font-size:12px;font-weight:700;line-height:20px;text-align:center}
.sbw-panel{position:fixed;right:20px;bottom:90px;z-index:2147483001;width:370px;height:560px;max-height:calc(100vh - 110px);background:#fff;border-radius:14px;box-shadow:0 12px 40px rgba(0,0,0,.28);display:flex;flex-direction:column;overflow:hidden}
.sbw-head{display:flex;align-items:center;padding:12px 10px 12px 18px;background:var(--sbw-accent);color:var(--sbw-fg)}
.sbw-title{flex:1;font-size:16px;font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.sbw-close{width:36px;height:36px;border-radius:8px;display:flex;align-items:center;justify-content:center}
.sbw-close svg,.sbw-send svg{width:22px;height:22px}
.sbw-status{padding:6px 14px;background:#fefcbf;color:#744210;font-size:12px}
.sbw-body{flex:1;display:flex;flex-direction:column;min-height:0;background:#f5f7fa}
.sbw-list{flex:1;overflow-y:auto;padding:14px 12px 6px;overscroll-behavior:contain}
.sbw-msg{display:flex;flex-direction:column;max-width:82%;margin-bottom:10px}
.sbw-in{margin-left:auto;align-items:flex-end}
.sbw-out{margin-right:auto;align-items:flex-start}
.sbw-author{font-size:12px;color:#4a5568;margin:0 0 2px 4px}
.sbw-bubble{padding:8px 12px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word}
.sbw-in .sbw-bubble{background:var(--sbw-accent);color:var(--sbw-fg);border-bottom-right-radius:4px}
.sbw-out .sbw-bubble{background:#fff;border:1px solid #e2e8f0;border-bottom-left-radius:4px}
.sbw-meta{font-size:11px;color:#718096;margin:2px 4px 0;display:flex;gap:6px}
.sbw-ok{color:#2f855a;font-weight:700}
.sbw-retry{color:#c53030;text-decoration:underline}
.sbw-failed .sbw-bubble{opacity:.6}
.sbw-typing{padding:0 16px 6px;font-size:12px;color:#718096;font-style:italic}
.sbw-counter{padding:4px 14px 0;background:#fff;font-size:11px;color:#718096;text-align:right}
.sbw-over{color:#c53030;font-weight:600}
.sbw-compose{display:flex;align-items:flex-end;gap:6px;padding:8px 8px 8px 12px;border-top:1px solid #e2e8f0;background:#fff}
.sbw-input,.sbw-form input{flex:1;border:1px solid #cbd5e0;background:#fff;outline:none;font-size:14px}
.sbw-input{resize:none;min-height:38px;max-height:120px;padding:8px 10px;border-radius:10px}
.sbw-input:focus,.sbw-form input:focus{border-color:var(--sbw-accent)}
.sbw-send,.sbw-start{border-radius:10px;background:var(--sbw-accent);color:var(--sbw-fg)}
.sbw-send{width:40px;height:38px;flex:none;display:flex;align-items:center;justify-content:center}
.sbw-send:disabled{opacity:.4;cursor:default}
.sbw-form{flex:1;overflow-y:auto;padding:18px;display:flex;flex-direction:column;gap:10px}
.sbw-form label{display:flex;flex-direction:column;gap:3px;font-size:12px;color:#4a5568}
.sbw-form input{padding:9px 10px;border-radius:8px}
.sbw-err{color:#c53030;font-size:12px}
.sbw-start{margin-top:4px;padding:10px;font-weight:600;text-align:center}
.sbw-cbopen{height:32px;padding:0 10px;margin-right:4px;border-radius:8px;border:1px solid currentColor;font-size:12px;white-space:nowrap}
.sbw-form textarea{border:1px solid #cbd5e0;border-radius:8px;padding:9px 10px;min-height:60px;resize:vertical;background:#fff}
.sbw-form textarea:focus{border-color:var(--sbw-accent)}
.sbw-form .sbw-bad{border-color:#c53030}
.sbw-done{color:#2f855a;font-weight:600}
.sbw-link{color:var(--sbw-accent);text-decoration:underline;text-align:center}
@media (max-width:480px){
.sbw-panel{top:0;left:0;right:0;bottom:0;width:100%;height:100%;max-height:none;border-radius:0}
.sbw-open .sbw-launcher{display:none}
.sbw-input,.sbw-form input{font-size:16px}
}`;

  /* ---------- DOM ---------- */
  function buildUI() {
    const host = ui.host = document.createElement('switchboard-chat');
    let root = host;
    try { root = host.attachShadow({ mode: 'open' }); } catch (e) { root = host; }
    const c = S.config.color, g = S.config.greeting;
    const greet = g && typeof g === 'object' ? g[LANG] || g.en || g.ru : '';

    const field = (type, ac) => h('input', { type, autocomplete: ac, maxLength: 200 });
    ui.fName = field('text', 'name'); ui.fPhone = field('tel', 'tel'); ui.fEmail = field('email', 'email');
    ui.launcher = h('button', { class: 'sbw-launcher', type: 'button', 'aria-expanded': 'false', 'aria-controls': 'sbw-panel',
      onclick: () => (S.isOpen ? closePanel() : openPanel()) }, [
      icon('M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 2-2zm3 6v2h2V9H7zm4 0v2h2V9h-2zm4 0v2h2V9h-2z'),
      ui.badge = h('span', { class: 'sbw-badge', hidden: true, 'aria-hidden': 'true' })]);
    ui.panel = h('div', { class: 'sbw-panel', id: 'sbw-panel', hidden: true, tabIndex: -1, role: 'dialog', 'aria-label': T.title }, [
      h('div', { class: 'sbw-head' }, [
        h('div', { class: 'sbw-title', text: T.title }),
        S.config.callback ? h('button', { class: 'sbw-cbopen', type: 'button', text: T.cbOpen,
          onclick: () => showCallback(!S.cbMode) }) : null,
        h('button', { class: 'sbw-close', type: 'button', 'aria-label': T.close, onclick: closePanel },
          [icon('M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z')])]),
      ui.status = h('div', { class: 'sbw-status', hidden: true, role: 'status' }),
      ui.form = h('form', { class: 'sbw-form', noValidate: true, onsubmit: onPrechatSubmit }, [
        h('p', { text: T.prechat }),
        h('label', {}, [h('span', { text: T.name }), ui.fName]),
        h('label', {}, [h('span', { text: T.phone }), ui.fPhone]),
        h('label', {}, [h('span', { text: T.email }), ui.fEmail]),
        ui.formErr = h('div', { class: 'sbw-err', hidden: true, role: 'alert' }),
        h('button', { class: 'sbw-start', type: 'submit', text: T.start })]),
      ui.cb = S.config.callback && h('form', { class: 'sbw-form sbw-cbform', noValidate: true, hidden: true, onsubmit: onCallbackSubmit }, [
        h('p', { text: T.cbIntro }),
        h('label', {}, [h('span', { text: T.cbPhone }), ui.cbPhone = h('input', { type: 'tel', autocomplete: 'tel', maxLength: 40 })]),
        ui.cbPhoneErr = h('div', { class: 'sbw-err', hidden: true, role: 'alert' }),
        h('label', {}, [h('span', { text: T.name }), ui.cbName = field('text', 'name')]),
        ui.cbNameErr = h('div', { class: 'sbw-err', hidden: true, role: 'alert' }),
        h('label', {}, [h('span', { text: T.cbComment }), ui.cbComment = h('textarea', { maxLength: 1000, rows: 3 })]),
        ui.cbCommentErr = h('div', { class: 'sbw-err', hidden: true, role: 'alert' }),
        ui.cbErr = h('div', { class: 'sbw-err', hidden: true, role: 'alert' }),
        ui.cbDone = h('div', { class: 'sbw-done', hidden: true, role: 'status' }),
        ui.cbSend = h('button', { class: 'sbw-start', type: 'submit', text: T.cbSend }),
        h('button', { class: 'sbw-link', type: 'button', text: T.cbBack, onclick: () => showCallback(false) })]),
      ui.body = h('div', { class: 'sbw-body' }, [
        ui.list = h('div', { class: 'sbw-list', role: 'log', 'aria-live': 'polite', 'aria-label': T.messages },
          [greet && renderMsg({ dir: 'out', text: String(greet), author: '', at: '' })]),
        ui.typing = h('div', { class: 'sbw-typing', hidden: true, 'aria-live': 'polite' }),
        ui.counter = h('div', { class: 'sbw-counter', hidden: true, 'aria-live': 'polite' }),
        h('div', { class: 'sbw-compose' }, [
          ui.input = h('textarea', { class: 'sbw-input', rows: 1, placeholder: T.placeholder, 'aria-label': T.placeholder,
            oninput: onInput, onkeydown: (e) => {
              if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) { e.preventDefault(); submitText(); }
            } }),
          ui.send = h('button', { class: 'sbw-send', type: 'button', disabled: true, 'aria-label': T.send, onclick: submitText },
            [icon('M3 20.5 21.5 12 3 3.5 3 10l13 2-13 2z')])])])]);
    ui.root = h('div', { class: 'sbw-root', onkeydown: (e) => {
      if ((e.key === 'Escape' || e.key === 'Esc') && S.isOpen) { e.stopPropagation(); closePanel(); }
    } }, [ui.panel, ui.launcher]);
    if (c && /^#([0-9a-f]{3}){1,2}$/i.test(c)) { // accent colour + readable text colour on it
      const x = c.length === 4 ? c.replace(/[0-9a-f]/gi, '$&$&') : c, n = parseInt(x.slice(1), 16);
      ui.root.style.setProperty('--sbw-accent', c);
      ui.root.style.setProperty('--sbw-fg', 0.299 * (n >> 16) + 0.587 * (n >> 8 & 255) + 0.114 * (n & 255) > 170 ? '#1a202c' : '#fff');
    }
    try { // constructable sheet: not subject to the host page's CSP style-src; else a <style> element
      if (root === host || !('adoptedStyleSheets' in root)) throw 0;
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (e) { root.appendChild(h('style', { text: CSS })); }
    root.appendChild(ui.root);
    ui.shadow = root;
    (document.body || document.documentElement).appendChild(host);
    setUnread(0);
    renderMode();
  }
  /* Focus el once the panel is painted, unless the visitor (or the browser's autofill) has put the focus
     into a field of the panel meanwhile: a late focus would carry their typing into another field. */
  function focusSoon(el) {
    setTimeout(() => {
      const a = ui.shadow !== ui.host ? ui.shadow.activeElement : document.activeElement;
      if (!S.isOpen || (a && a !== el && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName) && ui.panel.contains(a))) return;
      el.focus();
    }, 30);
  }
  const needPrechat = () => !!S.config.prechat && !S.token && !S.prechatDone;
  function renderMode() {
    const pre = needPrechat() && !S.cbMode;
    ui.form.hidden = !pre; ui.body.hidden = pre || !!S.cbMode;
    if (ui.cb) ui.cb.hidden = !S.cbMode; // built only when the channel takes call-back requests
  }

  /* ---------- "Call me back": POST /chat/callback ---------- */
  function showCallback(on) {
    S.cbMode = !!on && !!S.config.callback;
    renderMode();
    if (S.cbMode) {
      if (!ui.cbPhone.value && S.profile.phone) ui.cbPhone.value = S.profile.phone;
      if (!ui.cbName.value && S.profile.name) ui.cbName.value = S.profile.name;
      focusSoon(ui.cbPhone);
    }
  }
  function cbError(field, text) { // the message next to its field, or under the form
    const slot = { phone: [ui.cbPhoneErr, ui.cbPhone], name: [ui.cbNameErr, ui.cbName], comment: [ui.cbCommentErr, ui.cbComment] }[field];
    const [el, input] = slot || [ui.cbErr, null];
    el.textContent = text; el.hidden = false;
    if (input) { input.classList.add('sbw-bad'); input.setAttribute('aria-invalid', 'true'); input.focus(); }
  }
  function cbClear() {
    [ui.cbPhoneErr, ui.cbNameErr, ui.cbCommentErr, ui.cbErr].forEach((el) => { el.hidden = true; el.textContent = ''; });
    [ui.cbPhone, ui.cbName, ui.cbComment].forEach((el) => { el.classList.remove('sbw-bad'); el.removeAttribute('aria-invalid'); });
  }
  async function onCallbackSubmit(e) {
    e.preventDefault();
    cbClear();
    ui.cbDone.hidden = true;
    const phone = str(ui.cbPhone.value);
    if (!phone) return cbError('phone', T.cbNeedPhone);
    if (phone.replace(/\D/g, '').length < 10) return cbError('phone', T.cbBadPhone);
    const body = { channel_id: toId(CHANNEL), phone, lang: LANG };
    const name = str(ui.cbName.value), comment = String(ui.cbComment.value || '').trim();
    if (name) body.name = name;
    if (comment) body.comment = comment;
    ui.cbSend.disabled = true;
    try {
      const cb = (await api('POST', '/chat/callback', body)).callback || {};
      let when = '';
      if (!cb.within_hours && cb.expected_at) {
        try { when = new Date(cb.expected_at).toLocaleString(LANG === 'ru' ? 'ru-RU' : 'en-GB', { weekday: 'long', hour: '2-digit', minute: '2-digit' }); } catch (x) { when = ''; }
      }
      ui.cbDone.textContent = cb.duplicate ? T.cbAgain : when ? T.cbLater.replace('{when}', when) : T.cbSoon;
      ui.cbDone.hidden = false;
      ui.cbComment.value = '';
    } catch (err) {
      if (err.code === 'refused') cbError('phone', T.cbRefused);
      else if (err.status === 422 && err.field === 'phone') cbError('phone', T.cbBadPhone);
      else if (err.status === 422 && (err.field === 'name' || err.field === 'comment')) cbError(err.field, err.message);
      else if (err.status === 429) cbError('', T.cbBusy);
      else if (err.status === 403 || err.status === 409) cbError('', T.cbOff);
      else cbError('', T.cbFail);
    } finally { ui.cbSend.disabled = false; }
  }

  function openPanel() {
    if (!ui.panel) { S.wantOpen = true; return; }
    if (S.isOpen) return;
    S.isOpen = true;
    ui.panel.hidden = false;
    ui.root.classList.add('sbw-open');
    ui.launcher.setAttribute('aria-expanded', 'true');
    setUnread(0);
    if (!needPrechat()) ensureStarted();
    scrollBottom(true);
    const small = window.matchMedia && matchMedia('(max-width: 480px)').matches; // don't pop the keyboard on phones
    const target = needPrechat() ? ui.fName : small ? ui.panel : ui.input;
    focusSoon(target);
  }
  function closePanel() {
    if (!ui.panel) { S.wantOpen = false; return; }
    if (!S.isOpen) return;
    const a = document.activeElement, hadFocus = a && (a === ui.host || ui.host.contains(a));
    S.isOpen = false;
    ui.panel.hidden = true;
    ui.root.classList.remove('sbw-open');
    ui.launcher.setAttribute('aria-expanded', 'false');
    setUnread(S.unread);
    if (hadFocus) ui.launcher.focus();
  }
  function setUnread(n) {
    S.unread = n;
    ui.badge.hidden = !n;
    ui.badge.textContent = n > 9 ? '9+' : String(n);
    ui.launcher.setAttribute('aria-label', S.isOpen ? T.close : n ? T.open + ' (' + n + ' ' + T.unread + ')' : T.open);
  }

  function onPrechatSubmit(e) {
    e.preventDefault();
    const p = { name: str(ui.fName.value), phone: str(ui.fPhone.value), email: str(ui.fEmail.value) };
    const err = !p.name ? T.required : p.email && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(p.email) ? T.badEmail : '';
    ui.formErr.textContent = err;
    ui.formErr.hidden = !err;
    if (err) return (p.name ? ui.fEmail : ui.fName).focus();
    Object.keys(p).forEach((k) => { if (!p[k]) delete p[k]; });
    S.profile = p; // sent with the next /chat/session
    S.prechatDone = true;
    renderMode();
    ensureStarted();
    ui.input.focus();
  }

  /* ---------- messages ---------- */
  // record: {id, cid, dir: 'in'|'out', text, author, at, status: 'sending'|'sent'|'failed'|null, tries, timer, el, meta}
  function fmtTime(at) {
    const d = new Date(at);
    if (!at || isNaN(d)) return '';
    const o = { hour: '2-digit', minute: '2-digit' };
    if (d.toDateString() !== new Date().toDateString()) { o.day = '2-digit'; o.month = '2-digit'; }
    try { return d.toLocaleString(LANG, o); } catch (e) { return d.toISOString().slice(11, 16); }
  }
  function renderMsg(r) {
    r.el = h('div', { class: 'sbw-msg ' + (r.dir === 'in' ? 'sbw-in' : 'sbw-out') }, [
      r.dir === 'out' && r.author && h('div', { class: 'sbw-author', text: r.author }),
      h('div', { class: 'sbw-bubble', text: r.text }),
      r.meta = h('div', { class: 'sbw-meta' })]);
    paintMeta(r);
    return r.el;
  }
  function paintMeta(r) {
    const t = fmtTime(r.at);
    r.meta.textContent = '';
    if (t) r.meta.appendChild(h('time', { text: t, dateTime: r.at }));
    r.el.classList.toggle('sbw-failed', r.status === 'failed');
    if (r.dir !== 'in') return;
    r.meta.appendChild(r.status === 'sent' ? h('span', { class: 'sbw-ok', text: '✓', role: 'img', 'aria-label': T.received, title: T.received })
      : r.status === 'sending' ? h('span', { text: T.sending })
        : h('button', { class: 'sbw-retry', type: 'button', text: T.failed, title: r.error || '', onclick: () => retry(r) }));
  }
  function place(r) { // keep S.msgs and the DOM ordered by server id; unacked messages stay at the end
    let i = S.msgs.length;
    if (r.id != null) while (i > 0 && (S.msgs[i - 1].id == null || S.msgs[i - 1].id > r.id)) i--;
    S.msgs.splice(i, 0, r);
    ui.list.insertBefore(r.el, S.msgs[i + 1] ? S.msgs[i + 1].el : null);
  }
  function unplace(r) { const i = S.msgs.indexOf(r); if (i >= 0) S.msgs.splice(i, 1); }
  const nearBottom = () => ui.list.scrollHeight - ui.list.scrollTop - ui.list.clientHeight < 80;
  function scrollBottom(force) { if (force || nearBottom()) ui.list.scrollTop = ui.list.scrollHeight; }

  function mergeMessage(m, live) { // MESSAGE from history or live; dedupe by id and client_id
    if (!m || typeof m !== 'object') return;
    const id = toId(m.id), cid = m.client_id ? String(m.client_id) : '';
    if (id != null && S.byId.has(id)) return;
    if (cid && S.byCid.has(cid)) return markAcked(S.byCid.get(cid), id, m.created_at);
    const dir = m.direction === 'in' ? 'in' : 'out';
    const r = { id, cid, dir, text: m.text == null ? '' : String(m.text), at: m.created_at ? String(m.created_at) : '',
      author: dir === 'in' ? '' : m.author && m.author.name ? String(m.author.name) : T.support,
      status: dir === 'in' ? 'sent' : null, tries: 0, timer: 0 };
    if (id != null) S.byId.set(id, r);
    if (cid) S.byCid.set(cid, r);
    const stick = nearBottom();
    renderMsg(r);
    place(r);
    if (dir === 'out' && live) { hideAgentTyping(); if (!S.isOpen) setUnread(S.unread + 1); }
    scrollBottom(stick);
  }
  function markAcked(r, id, at) {
    clearTimeout(r.timer);
    r.status = 'sent';
    if (at) r.at = String(at);
    const other = id != null && S.byId.get(id);
    if (other && other !== r) { // already shown via an echo without client_id: drop the local copy
      unplace(r); r.el.remove();
      return;
    }
    if (id != null && r.id == null) { r.id = id; S.byId.set(id, r); unplace(r); place(r); }
    paintMeta(r);
  }

  /* ---------- composing & sending ---------- */
  function onInput() {
    const v = ui.input.value, len = v.length;
    ui.counter.hidden = len < COUNTER_FROM;
    ui.counter.textContent = (len > MAX_LEN ? T.tooLong + ' · ' : '') + len + '/' + MAX_LEN;
    ui.counter.classList.toggle('sbw-over', len > MAX_LEN);
    ui.send.disabled = !v.trim() || len > MAX_LEN;
    ui.input.style.height = 'auto';
    ui.input.style.height = Math.min(ui.input.scrollHeight + 2, 120) + 'px';
    if (v.trim() && S.connected && Date.now() - S.lastTypingSent > TYPING_EVERY) {
      S.lastTypingSent = Date.now();
      if (S.transport === 'ws') wsSend({ type: 'typing' });
      else api('POST', '/chat/typing' + qs(), {}).catch(() => {});
    }
  }
  function submitText() {
    const text = ui.input.value.trim();
    if (!text || ui.input.value.length > MAX_LEN) return;
    ui.input.value = '';
    onInput();
    S.lastTypingSent = 0;
    const r = { id: null, cid: newId(), dir: 'in', text, at: new Date().toISOString(), status: 'sending', tries: 0, timer: 0 };
    S.byCid.set(r.cid, r);
    renderMsg(r);
    place(r);
    scrollBottom(true);
    ensureStarted();
    deliver(r);
    ui.input.focus();
  }
  // Send (or queue until connected). Over WebSocket, wait ACK_TIMEOUT for the ack, resend once, then fail.
  function deliver(r) {
    if (r.status === 'sent') return;
    clearTimeout(r.timer);
    if (r.status !== 'sending') { r.status = 'sending'; paintMeta(r); }
    if (S.connected && S.transport === 'sse') return postMessage(r);
    r.timer = setTimeout(() => { if (r.status === 'sending') { if (++r.tries < 2) deliver(r); else fail(r); } }, ACK_TIMEOUT);
    if (S.connected) wsSend({ type: 'message', client_id: r.cid, text: r.text });
  }
  function fail(r, message, permanent) {
    clearTimeout(r.timer);
    r.status = 'failed'; r.error = message || ''; r.permanent = !!permanent;
    paintMeta(r);
  }
  function retry(r) {
    r.tries = 0; r.permanent = false;
    deliver(r);
    if (!S.connected) reconnectNow();
  }
  async function postMessage(r) { // SSE mode: the POST response is the ack
    try {
      const d = await api('POST', '/chat/messages' + qs(), { client_id: r.cid, text: r.text });
      markAcked(r, toId(d.message_id));
    } catch (e) {
      if (r.status !== 'sending') return;
      clearTimeout(r.timer);
      if (e.status === 401 || e.status === 403) { // stale token: refresh the session; flushPending() resends
        r.timer = setTimeout(() => { if (r.status === 'sending') fail(r); }, 3 * ACK_TIMEOUT);
        return dropTransport();
      }
      const transient = !e.status || e.status === 408 || e.status === 429 || e.status >= 500;
      if (!transient) return fail(r, e.message, true);
      if (++r.tries >= 2) return fail(r, e.message);
      r.timer = setTimeout(() => { if (r.status === 'sending' && S.connected) postMessage(r); },
        Math.min(Math.max(e.retryAfter, 1500), 60000));
    }
  }
  function flushPending() { // after (re)connect: resend everything unacked with the same client_id
    S.msgs.forEach((r) => { if (r.dir === 'in' && r.status !== 'sent' && !r.permanent) { r.tries = 0; deliver(r); } });
  }

  function handleFrame(raw) {
    let f;
    try { f = JSON.parse(raw); } catch (e) { return; }
    S.lastRx = Date.now();
    if (!f || typeof f !== 'object') return;
    const r = f.client_id != null ? S.byCid.get(String(f.client_id)) : null;
    if (f.type === 'ack') { if (r) markAcked(r, toId(f.message_id)); }
    else if (f.type === 'message') mergeMessage(f.message, true);
    else if (f.type === 'typing') showAgentTyping(f.name ? String(f.name) : '');
    else if (f.type === 'error') {
      if (r && r.status === 'sending') {
        const transient = /rate|limit|busy|unavail|internal|timeout/i.test(String(f.code || ''));
        clearTimeout(r.timer);
        if (transient && ++r.tries < 2) r.timer = setTimeout(() => deliver(r), 3000);
        else fail(r, f.message ? String(f.message) : '', !transient);
      } else console.warn('[switchboard]', f.code, f.message);
    }
  }
  function showAgentTyping(name) {
    ui.typing.textContent = name ? T.typing.replace('{name}', () => name) : T.typingAnon;
    ui.typing.hidden = false;
    scrollBottom(false);
    clearTimeout(S.typingTimer);
    S.typingTimer = setTimeout(hideAgentTyping, AGENT_TYPING_MS);
  }
  function hideAgentTyping() { clearTimeout(S.typingTimer); ui.typing.hidden = true; }

  /* ---------- session & connection ---------- */
  function runSession() { // POST /chat/session (serialized); stores the token, merges history
    const p = S.sessionChain.then(async () => {
      const id = toId(S.config.channel_id);
      const body = { channel_id: id != null ? id : toId(CHANNEL), lang: LANG, page: String(location.href).slice(0, 2000) };
      if (S.token) body.token = S.token;
      const sent = S.profile;
      Object.assign(body, sent);
      const d = await api('POST', '/chat/session', body);
      if (S.profile === sent) S.profile = {};
      if (d.token && d.token !== S.token) { S.token = String(d.token); store.set(S.token); }
      const live = S.hadSession; // on refreshes, agent replies we missed count as unread
      S.hadSession = true;
      if (Array.isArray(d.messages)) d.messages.forEach((m) => mergeMessage(m, live));
      renderMode();
    });
    S.sessionChain = p.catch(() => {});
    return p;
  }
  function ensureStarted() { if (!S.started) { S.started = true; connect(); } }
  async function connect() {
    setStatusLater(S.attempt ? T.reconnecting : T.connecting);
    try {
      await runSession();
    } catch (e) {
      if (e.status && e.status !== 429 && e.status < 500) setStatus(T.unavailable);
      return scheduleReconnect(e.retryAfter);
    }
    openTransport();
  }
  function openTransport() {
    closeTransport();
    if (S.useSSE) openSSE(); else openWS();
  }
  function openWS() {
    let ws, opened = false;
    try { ws = new WebSocket(BASE.replace(/^http/, 'ws') + '/chat/ws' + qs()); } catch (e) { S.useSSE = true; return openSSE(); }
    S.ws = ws;
    S.connectTimer = setTimeout(() => { if (S.ws === ws) { S.ws = null; ws.close(); wsFailed(); } }, CONNECT_TIMEOUT);
    ws.onopen = () => {
      if (S.ws !== ws) return;
      opened = true; S.wsFails = 0;
      onConnected('ws');
      S.pingTimer = setInterval(() => {
        if (Date.now() - S.lastRx > DEAD_AFTER) dropTransport(); // no pong: the socket is silently dead
        else wsSend({ type: 'ping' });
      }, PING_EVERY);
    };
    ws.onmessage = (ev) => { if (S.ws === ws) handleFrame(ev.data); };
    ws.onclose = () => {
      if (S.ws !== ws) return;
      S.ws = null;
      if (opened) onDisconnected(); else wsFailed();
    };
  }
  function wsFailed() { // two failed WebSocket connects in a row -> SSE + POST from now on
    if (++S.wsFails >= 2) S.useSSE = true;
    onDisconnected();
  }
  function wsSend(obj) {
    try { if (S.ws && S.ws.readyState === 1) S.ws.send(JSON.stringify(obj)); } catch (e) { /* onclose reconnects */ }
  }
  function openSSE() {
    if (!window.EventSource) return setStatus(T.unavailable);
    const es = S.es = new EventSource(BASE + '/chat/events' + qs());
    const onData = (ev) => { if (S.es === es) handleFrame(ev.data); };
    S.connectTimer = setTimeout(() => { if (S.es === es && !S.connected) dropTransport(); }, CONNECT_TIMEOUT);
    es.onopen = () => { if (S.es === es) onConnected('sse'); };
    es.onmessage = onData;
    ['ack', 'typing', 'error'].forEach((n) => es.addEventListener(n, onData)); // in case events are named
    es.onerror = () => { if (S.es === es) dropTransport(); }; // our own reconnect refreshes history too
  }
  function closeTransport() {
    clearInterval(S.pingTimer); clearTimeout(S.connectTimer);
    const ws = S.ws, es = S.es;
    S.ws = S.es = null; S.connected = false;
    try { if (ws) ws.close(); if (es) es.close(); } catch (e) { /* ignore */ }
  }
  function dropTransport() { if (S.ws || S.es) { closeTransport(); onDisconnected(); } }
  function onConnected(kind) {
    clearTimeout(S.connectTimer);
    S.transport = kind; S.connected = true; S.connectedAt = S.lastRx = Date.now();
    setStatus('');
    flushPending();
  }
  function onDisconnected() {
    clearInterval(S.pingTimer); clearTimeout(S.connectTimer);
    S.connected = false;
    if (S.connectedAt && Date.now() - S.connectedAt > 10000) S.attempt = 0; // it was a healthy connection
    S.connectedAt = 0;
    hideAgentTyping();
    scheduleReconnect(0);
  }
  function scheduleReconnect(minDelay) { // exponential backoff 1 s .. 30 s with ±25 % jitter
    if (S.reconnectTimer) return;
    const base = Math.min(30000, 1000 * Math.pow(2, S.attempt++));
    const delay = Math.min(300000, Math.max(minDelay || 0, Math.min(30000, base * (0.75 + Math.random() / 2))));
    setStatusLater(T.reconnecting);
    S.reconnectTimer = setTimeout(() => { S.reconnectTimer = 0; connect(); }, delay);
  }
  function reconnectNow() {
    if (!S.reconnectTimer) return;
    clearTimeout(S.reconnectTimer);
    S.reconnectTimer = 0;
    connect();
  }
  function setStatus(text) {
    clearTimeout(S.statusTimer);
    ui.status.textContent = text;
    ui.status.hidden = !text;
  }
  function setStatusLater(text) { // no flicker on quick (re)connects
    clearTimeout(S.statusTimer);
    S.statusTimer = setTimeout(() => { if (!S.connected) setStatus(text); }, 1500);
  }

  /* ---------- bootstrap & public API ---------- */
  let readyResolve, readyReject;
  const ready = new Promise((res, rej) => { readyResolve = res; readyReject = rej; });
  ready.catch(() => {});

  async function boot() {
    let cfg;
    for (let i = 0; !cfg; i++) {
      try {
        cfg = await api('GET', '/chat/config?channel=' + enc(CHANNEL));
      } catch (e) {
        if ((e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) || i >= 5) {
          console.warn('[switchboard] chat disabled: ' + e.message);
          return readyReject(e);
        }
        await new Promise((res) => setTimeout(res, Math.max(e.retryAfter, 1000 * Math.pow(2, i))));
      }
    }
    S.config = cfg;
    if (!document.body && document.readyState === 'loading') {
      await new Promise((res) => document.addEventListener('DOMContentLoaded', res, { once: true }));
    }
    buildUI();
    window.addEventListener('online', reconnectNow);
    document.addEventListener('visibilitychange', () => { if (!document.hidden) reconnectNow(); });
    readyResolve();
    if (S.token) ensureStarted(); // returning visitor: get agent replies live even while closed
    if (S.wantOpen) openPanel();
  }

  window.Switchboard = {
    version: '1',
    open: openPanel,
    close: closePanel,
    callback() { return ready.then(() => { openPanel(); showCallback(true); }); }, // opens the "Call me back" form
    identify(p) { // update name/email/phone of the current visitor (POST /chat/session with the current token)
      const fields = {};
      ['name', 'email', 'phone'].forEach((k) => { const v = str(p && p[k]); if (v) fields[k] = v; });
      return ready.then(async () => {
        S.profile = Object.assign({}, S.profile, fields);
        S.prechatDone = true;
        renderMode();
        const before = S.token;
        await runSession();
        if (!S.started) { S.started = true; openTransport(); }
        else if (S.token !== before && (S.ws || S.es)) openTransport();
      });
    }
  };

  boot();
})();
