// The operators' workspace: sign in, the unified inbox (live over the
// agents' stream), the conversation with its reply box, presence, RU/EN.
// Customer text is always rendered as text (Preact escapes it).
import { render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { call, listen, openStream, publish, setSender, type Agent, type StreamEvent, type Ticket } from './api';
import { browserLang, translator, type Key, type Lang, type T } from './i18n';
import { Calls } from './calls';
import { CallPop } from './callpop';
import { Dashboard } from './dashboard';
import { Inbox, Tasks } from './inbox';
import { Profile } from './profile';
import { TicketView } from './ticket';
import { Reports } from './reports';
import { Settings } from './admin/settings';
import './style.css';

const ROLE_RANK: Record<string, number> = { agent: 1, supervisor: 2, admin: 3 };

type View = 'mine' | 'unassigned' | 'team' | 'sla' | 'waiting' | 'all' | 'tasks';

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

/* New work: a short tone and a browser notification (when allowed) when a
 * ticket is given to me or a customer writes on mine. */
let audio: AudioContext | null = null;

function alertNewWork(t: T, body: string, number?: number) {
  try {
    audio ??= new AudioContext(); // one for the tab: browsers cap how many exist
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.05;
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.15);
  } catch {
    /* no audio: the notification still comes */
  }
  if ('Notification' in window && Notification.permission === 'granted') {
    const n = new Notification(t.t('newWork'), { body, tag: 'switchboard' });
    if (number)
      n.onclick = () => {
        window.focus();
        location.hash = `#/t/${number}`;
      };
  }
}

/* #/t/123 opens ticket 123 (links, notifications, reloads). */
function hashTicket(): number | null {
  const m = location.hash.match(/^#\/t\/(\d+)$/);
  return m ? Number(m[1]) : null;
}

/* Does ticket k belong in view v? The same tests the API's filters make,
 * so events can update the list in place. */
function inView(v: View, k: Ticket, me: Agent, myTeams: number[]) {
  switch (v) {
    case 'mine':
      return k.assignee_id === me.id;
    case 'unassigned':
      return k.assignee_id === null;
    case 'team':
      return k.team_id !== null && myTeams.includes(k.team_id);
    case 'sla':
      return (
        k.status !== 'resolved' &&
        k.status !== 'closed' &&
        Object.values(k.sla?.state ?? {}).some((s) => s === 'warning' || s === 'breached')
      );
    case 'waiting':
      return k.status === 'pending';
    default:
      return true;
  }
}

const QUERY: Record<View, string> = {
  mine: 'assignee=me',
  unassigned: 'assignee=none',
  team: 'team=mine',
  sla: 'sla=at_risk',
  waiting: 'status=pending',
  all: '',
  tasks: '',
};

function Operator(props: { me: Agent; t: T }) {
  const { t } = props;
  const [view, setView] = useState<View>('mine');
  const [tickets, setTickets] = useState<Ticket[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [selected, setSelected] = useState<number | null>(hashTicket);
  const [version, setVersion] = useState(0);
  const [unread, setUnread] = useState<Set<number>>(new Set());
  const [myTeams, setMyTeams] = useState<number[]>([]);
  const rank = ROLE_RANK[props.me.role] ?? 1;
  const selectedRef = useRef<number | null>(null);
  selectedRef.current = selected;
  const ticketsRef = useRef<Ticket[]>([]);
  ticketsRef.current = tickets;
  const loading = useRef(false);

  const reload = async () => {
    const r = await call<{ tickets: Ticket[]; next_cursor: string | null }>(
      'GET',
      `/api/v1/tickets?limit=100${QUERY[view] ? '&' + QUERY[view] : ''}`,
    );
    if (r.status === 200) {
      setTickets(r.json.tickets);
      setCursor(r.json.next_cursor);
    }
  };
  const more = async () => {
    if (!cursor || loading.current) return;
    loading.current = true;
    const r = await call<{ tickets: Ticket[]; next_cursor: string | null }>(
      'GET',
      `/api/v1/tickets?limit=200&cursor=${cursor}${QUERY[view] ? '&' + QUERY[view] : ''}`,
    );
    loading.current = false;
    if (r.status === 200) {
      const have = new Set(ticketsRef.current.map((k) => k.number));
      setTickets([...ticketsRef.current, ...r.json.tickets.filter((k) => !have.has(k.number))]);
      setCursor(r.json.next_cursor);
    }
  };
  useEffect(() => {
    call<{ agent: { team_ids?: number[] } }>('GET', `/api/v1/agents/${props.me.id}`).then((r) => {
      if (r.status === 200) setMyTeams(r.json.agent.team_ids ?? []);
    });
  }, []);
  useEffect(() => {
    if (view !== 'tasks') reload();
  }, [view]);
  /* A changed ticket moves into, within or out of the list in place. */
  const upsert = (k: Ticket) => {
    const list = ticketsRef.current;
    const i = list.findIndex((x) => x.number === k.number);
    const fits = inView(view, k, props.me, myTeams);
    if (i >= 0 && fits) setTickets(list.map((x, j) => (j === i ? k : x)));
    else if (i >= 0) setTickets(list.filter((_, j) => j !== i));
    else if (fits) {
      // newest first, like the API
      const at = list.findIndex((x) => x.number < k.number);
      if (at < 0 && cursor) return; // older than what is loaded: its page comes on scroll
      const c = [...list];
      c.splice(at < 0 ? c.length : at, 0, k);
      setTickets(c);
    }
  };
  useEffect(() => {
    const stop = listen((e: StreamEvent) => {
      const n = e.data?.ticket?.number ?? e.data?.ticket_number;
      if (e.type === 'stream.open') reload();
      if (e.type === 'notification' && e.data?.agent_id === props.me.id) {
        const num = e.data?.ticket_number ?? ticketsRef.current.find((x) => x.id === e.data?.ticket_id)?.number;
        if (e.data?.reason === 'assigned') alertNewWork(t, t.t('alertAssigned') + (num ? ` #${num}` : ''), num);
        else if (e.data?.reason === 'mentioned') alertNewWork(t, `${t.t('alertMentioned')} #${num ?? ''}`, num);
        else if (e.data?.reason === 'task_reminder' || e.data?.reason === 'task_overdue') alertNewWork(t, t.t('tasksView'));
      }
      if (e.type.startsWith('task.')) setVersion((v) => v + 1);
      if ((e.type === 'ticket.created' || e.type === 'ticket.updated') && e.data?.ticket) upsert(e.data.ticket as Ticket);
      if (e.type === 'message.created' && typeof n === 'number') {
        if (n === selectedRef.current) setVersion((v) => v + 1);
        else if (e.data?.direction === 'in') setUnread((u) => new Set(u).add(n));
        if (e.data?.direction === 'in') {
          const k = ticketsRef.current.find((x) => x.number === n);
          if (k && k.assignee_id === props.me.id && n !== selectedRef.current)
            alertNewWork(t, `${t.t('newMessage')} #${n}`, n);
        }
      } else if (typeof n === 'number' && n === selectedRef.current && e.type.startsWith('ticket.') && e.type !== 'ticket.viewers')
        setVersion((v) => v + 1);
    });
    return stop;
  }, [view, myTeams, cursor]);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const tag = (e.target as HTMLElement).tagName;
      if (tag === 'TEXTAREA' || tag === 'INPUT' || tag === 'SELECT') return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key !== 'j' && e.key !== 'k') return;
      const i = tickets.findIndex((k) => k.number === selected);
      const next = tickets[Math.max(0, Math.min(tickets.length - 1, i + (e.key === 'j' ? 1 : -1)))];
      if (next) select(next.number);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });
  useEffect(() => {
    const onHash = () => {
      const n = hashTicket();
      if (n !== null) setSelected(n);
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  const select = (n: number) => {
    setSelected(n);
    history.replaceState(null, '', `#/t/${n}`);
    setUnread((u) => {
      const c = new Set(u);
      c.delete(n);
      return c;
    });
  };
  const views: [View, Key][] = [
    ['mine', 'mine'],
    ['unassigned', 'unassigned'],
    ['team', 'myTeam'],
    ['sla', 'slaAtRisk'],
    ['waiting', 'waiting'],
    ...(rank >= 2 ? ([['all', 'all']] as [View, Key][]) : []),
    ['tasks', 'tasksView'],
  ];
  const label = t.t(views.find(([v]) => v === view)?.[1] ?? 'all');
  return (
    <div class="operator">
      <nav class="views" aria-label={t.t('views')}>
        {views.map(([v, k]) => (
          <button type="button" key={v} aria-pressed={view === v} class={view === v ? 'active' : ''}
            onClick={() => setView(v)}>{t.t(k)}</button>
        ))}
      </nav>
      <div class="panes">
        {view === 'tasks' ? (
          <Tasks t={t} version={version} onOpen={(n) => select(n)} />
        ) : (
          <Inbox t={t} tickets={tickets} selected={selected} unread={unread} onSelect={select} label={label}
            more={cursor !== null} onMore={more} />
        )}
        {selected !== null ? (
          <TicketView t={t} number={selected} version={version} me={props.me} onChanged={() => {}} />
        ) : (
          <section class="conversation empty">{t.t('selectTicket')}<p class="keys">{t.t('keys')}</p></section>
        )}
      </div>
    </div>
  );
}

type Section = 'inbox' | 'dashboard' | 'reports' | 'calls' | 'settings' | 'profile';

/* The frame: sections by role, presence, language, the one live stream. */
function Workspace(props: { me: Agent; lang: Lang; setLang: (l: Lang) => void; onOut: () => void }) {
  const t = useMemo(() => translator(props.lang), [props.lang]);
  const [section, setSection] = useState<Section>('inbox');
  const [live, setLive] = useState(false);
  const [presence, setPresence] = useState('offline');
  const rank = ROLE_RANK[props.me.role] ?? 1;
  useEffect(() => {
    const stop = openStream(publish, setLive, setSender);
    call<{ agent: { presence?: string } }>('GET', `/api/v1/agents/${props.me.id}`).then((r) => {
      if (r.status === 200 && r.json.agent.presence) setPresence(r.json.agent.presence);
    });
    // the engine may set me away (unanswered tickets): follow it
    const unlisten = listen((e) => {
      if (e.type === 'agent.presence' && e.data?.agent_id === props.me.id && e.data?.presence) setPresence(e.data.presence);
    });
    return () => {
      stop();
      unlisten();
    };
  }, []);
  useEffect(() => {
    // a ticket link (#/t/123) from another section, e.g. the missed calls, opens it in the inbox
    const onHash = () => {
      if (hashTicket() !== null) setSection('inbox');
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  const changePresence = async (p: string) => {
    const r = await call('POST', `/api/v1/agents/${props.me.id}/presence`, { presence: p });
    if (r.status === 200) setPresence(p);
  };
  const sections: [Section, Key, number][] = [
    ['inbox', 'inbox', 1],
    ['dashboard', 'dashboard', 2],
    ['reports', 'reports', 2],
    ['calls', 'calls', 2],
    ['settings', 'settings', 3],
    ['profile', 'profile', 1],
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
          <button type="button" class="icon" aria-label={t.t('alerts')} title={t.t('alerts')}
            onClick={() => Notification.requestPermission()}>🔔</button>
        )}
        <button type="button" onClick={props.onOut}>{t.t('signOut')}</button>
      </header>
      <CallPop me={props.me} t={t} />
      {section === 'inbox' && <Operator me={props.me} t={t} />}
      {section === 'dashboard' && <Dashboard me={props.me} t={t} />}
      {section === 'reports' && <Reports me={props.me} t={t} />}
      {section === 'calls' && <Calls me={props.me} t={t} />}
      {section === 'settings' && <Settings me={props.me} t={t} />}
      {section === 'profile' && <Profile me={props.me} t={t} setLang={props.setLang} />}
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
