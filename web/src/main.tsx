// The operators' workspace: sign in, the unified inbox (live over the
// agents' stream), the conversation with its reply box, presence, RU/EN.
// Customer text is always rendered as text (Preact escapes it).
import { render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { call, listen, openStream, publish, setSender, type Agent, type Contact, type Message, type StreamEvent, type Task, type Template, type Ticket } from './api';
import { browserLang, translator, type Key, type Lang, type T } from './i18n';
import { Dashboard } from './dashboard';
import { Reports } from './reports';
import { Settings } from './admin/settings';
import './style.css';

type View = 'mine' | 'unassigned' | 'all' | 'waiting' | 'tasks';

function Login(props: { t: T; onIn: (a: Agent) => void }) {
  const { t } = props.t;
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    setError('');
    const r = await call<{ agent: Agent }>('POST', '/api/v1/auth/login', { email, password });
    if (r.status === 200) props.onIn(r.json.agent);
    else setError(t('badLogin'));
  };
  return (
    <main class="login">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">{t('title')}</h1>
        <label>
          {t('email')}
          <input name="email" type="email" autocomplete="username" required value={email}
            onInput={(e) => setEmail((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          {t('password')}
          <input name="password" type="password" autocomplete="current-password" required value={password}
            onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
        </label>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit">{t('signIn')}</button>
      </form>
    </main>
  );
}

function statusLabel(t: T, s: string) {
  return t.t(('status.' + s) as Key) ?? s;
}

function priorityLabel(t: T, p: string) {
  return t.t(('priority.' + p) as Key) ?? p;
}

function Inbox(props: {
  t: T;
  tickets: Ticket[];
  selected: number | null;
  unread: Set<number>;
  onSelect: (n: number) => void;
}) {
  const { t } = props;
  if (props.tickets.length === 0) return <p class="empty">{t.t('noTickets')}</p>;
  return (
    <ul class="tickets" role="listbox" aria-label={t.t('all')}>
      {props.tickets.map((k) => (
        <li key={k.number} role="option" aria-selected={props.selected === k.number}
          class={`ticket prio-${k.priority}${props.selected === k.number ? ' selected' : ''}`}
          data-number={k.number} onClick={() => props.onSelect(k.number)}>
          <div class="row1">
            <span class="num">#{k.number}</span>
            <span class="who">{k.contact?.name || '—'}</span>
            {props.unread.has(k.number) && <span class="unread">{t.t('unread')}</span>}
          </div>
          <div class="row2">
            <span class="subject">{k.subject || ''}</span>
          </div>
          <div class="row3">
            <span class={`badge status-${k.status}`}>{statusLabel(t, k.status)}</span>
            <span class={`badge priority-${k.priority}`}>{priorityLabel(t, k.priority)}</span>
            <span class="channel">{k.channel_kind}</span>
          </div>
        </li>
      ))}
    </ul>
  );
}

function Tasks(props: { t: T; version: number; onOpen: (n: number) => void }) {
  const { t } = props;
  const [tasks, setTasks] = useState<Task[]>([]);
  const load = () =>
    call<{ tasks: Task[] }>('GET', '/api/v1/tasks?assignee=me').then((r) => {
      if (r.status === 200) setTasks(r.json.tasks);
    });
  useEffect(() => {
    load();
  }, [props.version]);
  const done = async (id: number) => {
    await call('PATCH', `/api/v1/tasks/${id}`, { status: 'done' });
    load();
  };
  if (tasks.length === 0) return <p class="empty">{t.t('noTasks')}</p>;
  // call backs first: a customer is waiting for the phone to ring
  const sorted = [...tasks].sort((a, b) => (a.kind === 'call_back' ? 0 : 1) - (b.kind === 'call_back' ? 0 : 1));
  return (
    <ul class="tasks" aria-label={t.t('tasksView')}>
      {sorted.map((k) => (
        <li key={k.id} class={`task ${k.kind}${k.overdue_at ? ' overdue' : ''}`} data-task={k.id}>
          {k.kind === 'call_back' && <span class="badge callback">{t.t('callBack')}</span>}
          <span class="title">{k.title}</span>
          <span class="due">
            {t.t('due')} {t.time(k.due_at)} {k.overdue_at ? `(${t.t('overdue')})` : ''}
          </span>
          {k.ticket_number !== null && (
            <button type="button" class="link" onClick={() => props.onOpen(k.ticket_number!)}>#{k.ticket_number}</button>
          )}
          <button type="button" onClick={() => done(k.id)}>{t.t('done')}</button>
        </li>
      ))}
    </ul>
  );
}

/* New work: a short tone and a browser notification (when allowed) when a
 * ticket is given to me or a customer writes on mine. */
function alertNewWork(t: T, body: string) {
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.05;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.15);
  } catch {
    /* no audio: the notification still comes */
  }
  if ('Notification' in window && Notification.permission === 'granted')
    new Notification(t.t('newWork'), { body, tag: 'switchboard' });
}

function CustomerCard(props: { t: T; contact: Contact; version: number; current: number }) {
  const { t } = props;
  const [tickets, setTickets] = useState<Ticket[]>([]);
  useEffect(() => {
    call<{ tickets: Ticket[] }>('GET', `/api/v1/contacts/${props.contact.id}/timeline`).then((r) => {
      if (r.status === 200) setTickets(r.json.tickets);
    });
  }, [props.contact.id, props.version]);
  const c = props.contact;
  return (
    <aside class="card" aria-label={t.t('card')}>
      <h3>
        {c.name || '—'} {c.vip && <span class="badge vip">{t.t('vip')}</span>}
      </h3>
      {c.identities?.length > 0 && (
        <dl>
          <dt>{t.t('identities')}</dt>
          {c.identities.map((i) => (
            <dd key={i.kind + i.address}>
              <span class="kind">{i.kind}</span> {i.address}
            </dd>
          ))}
        </dl>
      )}
      {c.tags?.length > 0 && <p class="tags">{c.tags.map((x) => <span class="badge" key={x}>{x}</span>)}</p>}
      <h4>{t.t('tickets')}</h4>
      <ul class="history">
        {tickets.map((k) => (
          <li key={k.number} class={k.number === props.current ? 'current' : ''}>
            #{k.number} <span class={`badge status-${k.status}`}>{statusLabel(t, k.status)}</span> {k.subject || ''}
          </li>
        ))}
      </ul>
    </aside>
  );
}

function TicketView(props: { t: T; number: number; version: number; me: Agent; onChanged: () => void }) {
  const { t } = props;
  const [ticket, setTicket] = useState<Ticket | null>(null);
  const [contact, setContact] = useState<Contact | null>(null);
  const [messages, setMessages] = useState<Message[]>([]);
  const [templates, setTemplates] = useState<Template[]>([]);
  const [text, setText] = useState('');
  const [kind, setKind] = useState<'reply' | 'note'>('reply');
  const [error, setError] = useState('');
  const box = useRef<HTMLTextAreaElement>(null);
  const load = async () => {
    const r = await call<{ ticket: Ticket; contact: Contact | null; messages: Message[] }>(
      'GET',
      `/api/v1/tickets/${props.number}`,
    );
    if (r.status === 200) {
      setTicket(r.json.ticket);
      setContact(r.json.contact);
      setMessages(r.json.messages);
    }
  };
  useEffect(() => {
    load();
  }, [props.number, props.version]);
  useEffect(() => {
    call<{ templates: Template[] }>('GET', '/api/v1/templates').then((r) => {
      if (r.status === 200) setTemplates(r.json.templates);
    });
  }, []);
  const sendTemplate = async (id: number) => {
    if (!id) return;
    setError('');
    const r = await call('POST', `/api/v1/tickets/${props.number}/messages`, { template_id: id, kind });
    if (r.status === 201) {
      load();
      props.onChanged();
    } else setError(t.t('sendFailed'));
  };
  const patch = async (body: Record<string, string>) => {
    await call('PATCH', `/api/v1/tickets/${props.number}`, body);
    load();
    props.onChanged();
  };
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.target as HTMLElement).tagName === 'TEXTAREA' || (e.target as HTMLElement).tagName === 'INPUT') return;
      if (e.key === 'r' || e.key === 'n') {
        setKind(e.key === 'r' ? 'reply' : 'note');
        box.current?.focus();
        e.preventDefault();
      } else if (e.key === 'e') {
        resolve();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });
  const send = async (e: Event) => {
    e.preventDefault();
    if (!text.trim()) return;
    setError('');
    const r = await call('POST', `/api/v1/tickets/${props.number}/messages`, { text, kind });
    if (r.status === 201) {
      setText('');
      load();
      props.onChanged();
    } else setError(t.t('sendFailed'));
  };
  const resolve = async () => {
    await call('PATCH', `/api/v1/tickets/${props.number}`, { status: 'resolved' });
    load();
    props.onChanged();
  };
  if (!ticket) return <section class="conversation" />;
  const card = contact ? <CustomerCard t={t} contact={contact} version={props.version} current={ticket.number} /> : null;
  const due = ticket.sla?.due ?? {};
  const state = ticket.sla?.state ?? {};
  const clocks: [string, Key][] = [['first_response', 'dueFirst'], ['next_response', 'dueNext'], ['resolution', 'dueResolution']];
  return (
    <div class="detail">
    <section class="conversation" aria-label={`#${ticket.number}`}>
      <header>
        <h2>#{ticket.number} {ticket.contact?.name || ''}</h2>
        <div class="meta">
          <select aria-label={t.t('status')} name="status" value={ticket.status}
            onChange={(e) => patch({ status: (e.target as HTMLSelectElement).value })}>
            {['new', 'open', 'pending', 'resolved', 'closed'].map((s) => (
              <option value={s} key={s}>{statusLabel(t, s)}</option>
            ))}
          </select>
          <select aria-label={t.t('priority')} name="priority" value={ticket.priority}
            onChange={(e) => patch({ priority: (e.target as HTMLSelectElement).value })}>
            {['low', 'normal', 'high', 'urgent'].map((p) => (
              <option value={p} key={p}>{priorityLabel(t, p)}</option>
            ))}
          </select>
          {clocks.map(([c, label]) =>
            due[c] || state[c] ? (
              <span class={`sla sla-${state[c] || 'running'}`} key={c}>
                {t.t(label)} {t.time(due[c] ?? null)} {state[c] ? `(${t.t(state[c] as Key)})` : ''}
              </span>
            ) : null,
          )}
          <button type="button" onClick={resolve} disabled={ticket.status === 'resolved'}>{t.t('resolve')}</button>
        </div>
      </header>
      <ol class="messages">
        {messages.map((m) => (
          <li key={m.id} class={`message ${m.direction}`}>
            <div class="author">
              {m.direction === 'in' ? t.t('customer') : m.author && 'name' in m.author ? m.author.name : t.t('system')}
              <time>{t.time(m.created_at)}</time>
              {m.delivery_status && m.direction === 'out' && (
                <span class={`delivery delivery-${m.delivery_status}`}>{t.t(('delivery.' + m.delivery_status) as Key) ?? m.delivery_status}</span>
              )}
            </div>
            <p class="text">{m.text}</p>
          </li>
        ))}
      </ol>
      <form class="composer" onSubmit={send}>
        <div class="tabs" role="tablist">
          <button type="button" role="tab" aria-selected={kind === 'reply'} onClick={() => setKind('reply')}>{t.t('reply')}</button>
          <button type="button" role="tab" aria-selected={kind === 'note'} onClick={() => setKind('note')}>{t.t('note')}</button>
        </div>
        <textarea ref={box} name="text" value={text} aria-label={kind === 'reply' ? t.t('reply') : t.t('note')}
          placeholder={kind === 'reply' ? t.t('replyPlaceholder') : t.t('notePlaceholder')}
          onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) send(e);
          }} />
        {error && <p class="error" role="alert">{error}</p>}
        <div class="actions">
          {templates.length > 0 && (
            <select aria-label={t.t('template')} name="template" value=""
              onChange={(e) => sendTemplate(Number((e.target as HTMLSelectElement).value))}>
              <option value="">{t.t('template')}</option>
              {templates.map((x) => (
                <option value={x.id} key={x.id}>{x.shortcut ? `/${x.shortcut} — ${x.name}` : x.name}</option>
              ))}
            </select>
          )}
          <button type="submit">{t.t('send')}</button>
        </div>
      </form>
    </section>
    {card}
    </div>
  );
}

function Operator(props: { me: Agent; t: T }) {
  const { t } = props;
  const [view, setView] = useState<View>('mine');
  const [tickets, setTickets] = useState<Ticket[]>([]);
  const [selected, setSelected] = useState<number | null>(null);
  const [version, setVersion] = useState(0);
  const [unread, setUnread] = useState<Set<number>>(new Set());
  const selectedRef = useRef<number | null>(null);
  selectedRef.current = selected;

  const query = () => {
    switch (view) {
      case 'mine':
        return `?assignee=${props.me.id}`;
      case 'unassigned':
        return '?assignee=none';
      case 'waiting':
        return '?status=pending';
      default:
        return '';
    }
  };
  const reload = async () => {
    const r = await call<{ tickets: Ticket[] }>('GET', '/api/v1/tickets' + query());
    if (r.status === 200) setTickets(r.json.tickets);
  };
  useEffect(() => {
    reload();
  }, [view]);
  useEffect(() => {
    const stop = listen(
      (e: StreamEvent) => {
        const n = e.data?.ticket?.number ?? e.data?.ticket_number;
        if (e.type === 'notification' && e.data?.agent_id === props.me.id && e.data?.reason === 'assigned')
          alertNewWork(t, `#${e.data?.ticket_id ?? ''}`);
        if (e.type.startsWith('task.')) setVersion((v) => v + 1);
        if (e.type.startsWith('ticket.') || e.type === 'message.created') {
          reload();
          if (typeof n === 'number') {
            if (n === selectedRef.current) setVersion((v) => v + 1);
            else if (e.type === 'message.created' && e.data?.direction === 'in')
              setUnread((u) => new Set(u).add(n));
          }
        }
      },
    );
    return stop;
  }, [view]);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const tag = (e.target as HTMLElement).tagName;
      if (tag === 'TEXTAREA' || tag === 'INPUT' || tag === 'SELECT') return;
      if (e.key !== 'j' && e.key !== 'k') return;
      const i = tickets.findIndex((k) => k.number === selected);
      const next = tickets[Math.max(0, Math.min(tickets.length - 1, i + (e.key === 'j' ? 1 : -1)))];
      if (next) select(next.number);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });
  const select = (n: number) => {
    setSelected(n);
    setUnread((u) => {
      const c = new Set(u);
      c.delete(n);
      return c;
    });
  };
  const views: [View, Key][] = [
    ['mine', 'mine'],
    ['unassigned', 'unassigned'],
    ['waiting', 'waiting'],
    ['all', 'all'],
    ['tasks', 'tasksView'],
  ];
  return (
    <div class="operator">
      <nav class="views" aria-label="views">
        {views.map(([v, k]) => (
          <button type="button" key={v} aria-pressed={view === v} class={view === v ? 'active' : ''}
            onClick={() => setView(v)}>{t.t(k)}</button>
        ))}
      </nav>
      <div class="panes">
        {view === 'tasks' ? (
          <Tasks t={t} version={version} onOpen={(n) => select(n)} />
        ) : (
          <Inbox t={t} tickets={tickets} selected={selected} unread={unread} onSelect={select} />
        )}
        {selected !== null ? (
          <TicketView t={t} number={selected} version={version} me={props.me} onChanged={reload} />
        ) : (
          <section class="conversation empty">{t.t('selectTicket')}<p class="keys">{t.t('keys')}</p></section>
        )}
      </div>
    </div>
  );
}

type Section = 'inbox' | 'dashboard' | 'reports' | 'settings';

const ROLE_RANK: Record<string, number> = { agent: 1, supervisor: 2, admin: 3 };

/* The frame: sections by role, presence, language, the one live stream. */
function Workspace(props: { me: Agent; lang: Lang; setLang: (l: Lang) => void; onOut: () => void }) {
  const t = useMemo(() => translator(props.lang), [props.lang]);
  const [section, setSection] = useState<Section>('inbox');
  const [live, setLive] = useState(false);
  const [presence, setPresence] = useState('offline');
  const rank = ROLE_RANK[props.me.role] ?? 1;
  useEffect(() => {
    const stop = openStream(publish, setLive, setSender);
    return stop;
  }, []);
  const changePresence = async (p: string) => {
    const r = await call('POST', `/api/v1/agents/${props.me.id}/presence`, { presence: p });
    if (r.status === 200) setPresence(p);
  };
  const sections: [Section, Key, number][] = [
    ['inbox', 'inbox', 1],
    ['dashboard', 'dashboard', 2],
    ['reports', 'reports', 2],
    ['settings', 'settings', 3],
  ];
  return (
    <div class="workspace">
      <header class="topbar">
        <strong>{t.t('title')}</strong>
        <nav class="sections" aria-label={t.t('sections')}>
          {sections.filter(([, , r]) => rank >= r).map(([s, k]) => (
            <button type="button" key={s} aria-pressed={section === s} class={section === s ? 'active' : ''}
              onClick={() => setSection(s)}>{t.t(k)}</button>
          ))}
        </nav>
        <span class={`live ${live ? 'on' : 'off'}`}>{live ? t.t('live') : t.t('reconnecting')}</span>
        <span class="me">{props.me.name}</span>
        <select aria-label={t.t('status')} name="presence" value={presence}
          onChange={(e) => changePresence((e.target as HTMLSelectElement).value)}>
          <option value="online">{t.t('online')}</option>
          <option value="away">{t.t('away')}</option>
          <option value="offline">{t.t('offline')}</option>
        </select>
        <select aria-label={t.t('language')} name="language" value={props.lang}
          onChange={(e) => props.setLang((e.target as HTMLSelectElement).value as Lang)}>
          <option value="ru">Русский</option>
          <option value="en">English</option>
        </select>
        {'Notification' in window && Notification.permission === 'default' && (
          <button type="button" onClick={() => Notification.requestPermission()}>{t.t('alerts')}</button>
        )}
        <button type="button" onClick={props.onOut}>{t.t('signOut')}</button>
      </header>
      {section === 'inbox' && <Operator me={props.me} t={t} />}
      {section === 'dashboard' && <Dashboard me={props.me} t={t} />}
      {section === 'reports' && <Reports me={props.me} t={t} />}
      {section === 'settings' && <Settings me={props.me} t={t} />}
    </div>
  );
}

function App() {
  const [me, setMe] = useState<Agent | null | undefined>(undefined);
  const [lang, setLangState] = useState<Lang>((localStorage.getItem('sb-lang') as Lang) || browserLang());
  const setLang = (l: Lang) => {
    localStorage.setItem('sb-lang', l);
    setLangState(l);
  };
  useEffect(() => {
    call<{ agent: Agent }>('GET', '/api/v1/auth/me').then((r) => setMe(r.status === 200 ? r.json.agent : null));
  }, []);
  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);
  const t = useMemo(() => translator(lang), [lang]);
  if (me === undefined) return null;
  if (me === null) return <Login t={t} onIn={setMe} />;
  return (
    <Workspace me={me} lang={lang} setLang={setLang}
      onOut={async () => {
        await call('POST', '/api/v1/auth/logout', {});
        setMe(null);
      }} />
  );
}

render(<App />, document.getElementById('app')!);
