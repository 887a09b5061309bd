// The supervisors' live dashboard: one GET of /api/v1/dashboard, then the
// `dashboard` events of the shared stream (the server sends a snapshot
// when something changed, and every few seconds anyway). Big numbers for a
// wall screen, the day's volume by hour drawn as SVG (the CSP forbids
// inline styles and scripts, so no chart library), tables of teams,
// channels and agents, and marking an agent absent with a deputy.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { call, listen, type Agent, type ApiError } from './api';
import { number, strings, type T } from './i18n';
import './dashboard.css';

type Group = { waiting: number; longest_wait_seconds: number; open: number; sla_at_risk: number; sla_breached: number };
type TeamRow = Group & { team_id: number | null; name: string | null };
type ChannelRow = Group & { kind: string };
type AgentRow = {
  id: number;
  name: string;
  presence: 'online' | 'away' | 'offline';
  absent: boolean;
  absent_until: string | null;
  deputy_id: number | null;
  load: number;
  capacity: number;
  open_tickets: number;
};
type Durations = { count: number; median_seconds: number | null; average_seconds: number | null };
type Today = {
  day_start: string;
  time_zone: string;
  created: number;
  resolved: number;
  first_response: Durations;
  resolution: Durations;
  csat: { count: number; average: number | null };
  volume_by_hour: number[];
};
export type Snapshot = {
  at: string;
  totals: Group;
  teams: TeamRow[];
  channels: ChannelRow[];
  agents: AgentRow[];
  today: Today;
};

const s = strings({
  ru: {
    title: 'Монитор',
    updated: 'Обновлено',
    loading: 'Загрузка…',
    loadFailed: 'Не удалось загрузить монитор',
    queue: 'Ждут ответа',
    longest: 'Дольше всех ждёт',
    atRisk: 'SLA под угрозой',
    breached: 'SLA нарушен',
    agentsOnline: 'Операторов на линии',
    created: 'Новых сегодня',
    resolved: 'Решено сегодня',
    frt: 'Первый ответ (медиана)',
    resolution: 'Решение (медиана)',
    csat: 'Оценка (CSAT)',
    average: 'в среднем',
    ratings: 'оценок',
    volume: 'Обращения по часам',
    volumeLabel: 'Новые обращения по часам сегодня, всего',
    teams: 'Команды',
    channels: 'Каналы',
    agents: 'Операторы',
    team: 'Команда',
    noTeam: 'Без команды',
    channel: 'Канал',
    open: 'Открыто',
    agent: 'Оператор',
    state: 'Статус',
    load: 'Загрузка',
    tickets: 'Обращений',
    absence: 'Отсутствие',
    absentUntil: 'отсутствует до',
    deputy: 'Заместитель',
    noDeputy: 'без заместителя',
    markAbsent: 'Отметить отсутствие',
    endAbsence: 'Вернуть',
    until: 'До',
    handover: 'Передать открытые обращения заместителю',
    save: 'Сохранить',
    cancel: 'Отмена',
    failed: 'Не удалось сохранить',
    absentFor: 'Отсутствие оператора',
    online: 'на линии',
    away: 'отошёл',
    offline: 'не в сети',
    sec: 'с',
    min: 'мин',
    hour: 'ч',
    day: 'Сутки',
    webchat: 'Веб-чат',
    phone: 'Телефон',
    api: 'API',
    nothingOpen: 'Открытых обращений нет',
  },
  en: {
    title: 'Dashboard',
    updated: 'Updated',
    loading: 'Loading…',
    loadFailed: 'Could not load the dashboard',
    queue: 'Waiting',
    longest: 'Longest wait',
    atRisk: 'SLA at risk',
    breached: 'SLA breached',
    agentsOnline: 'Agents online',
    created: 'New today',
    resolved: 'Resolved today',
    frt: 'First response (median)',
    resolution: 'Resolution (median)',
    csat: 'Satisfaction (CSAT)',
    average: 'average',
    ratings: 'ratings',
    volume: 'Volume by hour',
    volumeLabel: 'New tickets by hour today, total',
    teams: 'Teams',
    channels: 'Channels',
    agents: 'Agents',
    team: 'Team',
    noTeam: 'No team',
    channel: 'Channel',
    open: 'Open',
    agent: 'Agent',
    state: 'State',
    load: 'Load',
    tickets: 'Tickets',
    absence: 'Absence',
    absentUntil: 'absent until',
    deputy: 'Deputy',
    noDeputy: 'no deputy',
    markAbsent: 'Mark absent',
    endAbsence: 'Back now',
    until: 'Until',
    handover: 'Hand open tickets over to the deputy',
    save: 'Save',
    cancel: 'Cancel',
    failed: 'Could not save',
    absentFor: 'Absence of',
    online: 'online',
    away: 'away',
    offline: 'offline',
    sec: 's',
    min: 'min',
    hour: 'h',
    day: 'Day',
    webchat: 'Web chat',
    phone: 'Phone',
    api: 'API',
    nothingOpen: 'No open tickets',
  },
});

/* 45 s, 3 min 20 s, 2 h 05 min */
function duration(t: T, seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '—';
  const total = Math.round(seconds);
  if (total < 60) return `${number(t, total)} ${s(t, 'sec')}`;
  const m = Math.floor(total / 60);
  if (m < 60) return `${m} ${s(t, 'min')} ${String(total % 60).padStart(2, '0')} ${s(t, 'sec')}`;
  return `${Math.floor(m / 60)} ${s(t, 'hour')} ${String(m % 60).padStart(2, '0')} ${s(t, 'min')}`;
}

function clock(t: T, iso: string) {
  return new Intl.DateTimeFormat(t.lang, { hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(new Date(iso));
}

function channelName(t: T, kind: string) {
  return kind === 'webchat' || kind === 'api' || kind === 'phone' ? s(t, kind) : kind || '—';
}

/* A waiting time as the server gave it, moved on by the time since. */
function waitNow(g: Group, receivedAt: number, now: number) {
  if (g.waiting === 0 || g.longest_wait_seconds === 0) return g.waiting === 0 ? null : 0;
  return g.longest_wait_seconds + Math.max(0, Math.floor((now - receivedAt) / 1000));
}

function Tile(props: { label: string; value: string; note?: string; tone?: 'bad' | 'warn' | 'good' }) {
  return (
    <div class={`tile ${props.tone ?? ''}`} role="group" aria-label={props.label}>
      <span class="tile-label">{props.label}</span>
      <span class="tile-value">{props.value}</span>
      {props.note && <span class="tile-note">{props.note}</span>}
    </div>
  );
}

/* The installation's day, as a date in its zone. */
function dayOf(t: T, today: Today) {
  try {
    return new Intl.DateTimeFormat(t.lang, { dateStyle: 'medium', timeZone: today.time_zone }).format(Date.parse(today.day_start));
  } catch {
    return t.time(today.day_start);
  }
}

/* The wall-clock hour of `at` in the installation's time zone. */
function zoneHour(at: number, zone: string) {
  try {
    const h = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', hourCycle: 'h23', timeZone: zone }).format(at);
    return Number(h);
  } catch {
    return new Date(at).getUTCHours(); // a zone this browser does not know
  }
}

/* Bars for the 24 wall-clock hours of the installation's day (bucket h is
 * local hour h in its time zone, whatever the browser's zone). */
function VolumeChart(props: { t: T; today: Today; now: number }) {
  const { t, today } = props;
  const v = today.volume_by_hour;
  const max = Math.max(1, ...v);
  const current = zoneHour(props.now, today.time_zone);
  const W = 960, H = 200, top = 18, bottom = 24, bw = W / 24;
  const hourLabel = (h: number) => String(h).padStart(2, '0');
  const total = v.reduce((a, b) => a + b, 0);
  return (
    <svg class="volume" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${s(t, 'volumeLabel')}: ${number(t, total)}`}>
      <line x1="0" y1={H - bottom} x2={W} y2={H - bottom} class="axis" />
      {v.map((n, h) => {
        const bh = ((H - top - bottom) * n) / max;
        const x = h * bw + 3;
        return (
          <g key={h}>
            <rect x={x} y={H - bottom - bh} width={bw - 6} height={bh} class={h === current ? 'bar now' : 'bar'}>
              <title>{`${hourLabel(h)}:00 — ${number(t, n)}`}</title>
            </rect>
            {n > 0 && (
              <text x={x + (bw - 6) / 2} y={H - bottom - bh - 4} class="bar-value">{number(t, n)}</text>
            )}
            {h % 3 === 0 && <text x={x + (bw - 6) / 2} y={H - 6} class="hour">{hourLabel(h)}</text>}
          </g>
        );
      })}
    </svg>
  );
}

function GroupTable(props: { t: T; caption: string; first: string; rows: { key: string; name: string; g: Group }[];
  receivedAt: number; now: number }) {
  const { t } = props;
  return (
    <div class="table-wrap">
      <table class="groups">
        <caption>{props.caption}</caption>
        <thead>
          <tr>
            <th scope="col">{props.first}</th>
            <th scope="col">{s(t, 'queue')}</th>
            <th scope="col">{s(t, 'longest')}</th>
            <th scope="col">{s(t, 'open')}</th>
            <th scope="col">{s(t, 'atRisk')}</th>
            <th scope="col">{s(t, 'breached')}</th>
          </tr>
        </thead>
        <tbody>
          {props.rows.length === 0 && (
            <tr><td colSpan={6} class="empty">{s(t, 'nothingOpen')}</td></tr>
          )}
          {props.rows.map(({ key, name, g }) => (
            <tr key={key} data-key={key}>
              <th scope="row">{name}</th>
              <td class="num queue">{number(t, g.waiting)}</td>
              <td class="num">{duration(t, waitNow(g, props.receivedAt, props.now))}</td>
              <td class="num">{number(t, g.open)}</td>
              <td class={`num ${g.sla_at_risk > 0 ? 'warn' : ''}`}>{number(t, g.sla_at_risk)}</td>
              <td class={`num ${g.sla_breached > 0 ? 'bad' : ''}`}>{number(t, g.sla_breached)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/* "2026-11-24T18:30" in local time, for <input type="datetime-local">. */
function localInput(ms: number) {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function AbsenceForm(props: { t: T; agent: AgentRow; agents: AgentRow[]; onDone: () => void }) {
  const { t, agent } = props;
  const [until, setUntil] = useState(localInput(Date.now() + 8 * 3600000));
  const [deputy, setDeputy] = useState('');
  const [handover, setHandover] = useState(false);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const when = new Date(until);
    if (Number.isNaN(when.getTime())) return setError(s(t, 'failed'));
    setBusy(true);
    const r = await call<ApiError>('POST', `/api/v1/agents/${agent.id}/absence`, {
      until: when.toISOString(),
      deputy_id: deputy ? Number(deputy) : null,
      handover,
    });
    setBusy(false);
    if (r.status === 200) props.onDone();
    else setError(r.json.error?.message ?? s(t, 'failed'));
  };
  const id = `absence-${agent.id}`;
  return (
    <form class="absence-form" onSubmit={submit} aria-label={`${s(t, 'absentFor')} ${agent.name}`}>
      <label for={`${id}-until`}>{s(t, 'until')}</label>
      <input id={`${id}-until`} type="datetime-local" required value={until} autoFocus
        onInput={(e) => setUntil((e.target as HTMLInputElement).value)} />
      <label for={`${id}-deputy`}>{s(t, 'deputy')}</label>
      <select id={`${id}-deputy`} value={deputy} onChange={(e) => setDeputy((e.target as HTMLSelectElement).value)}>
        <option value="">{s(t, 'noDeputy')}</option>
        {props.agents.filter((a) => a.id !== agent.id).map((a) => (
          <option key={a.id} value={String(a.id)}>{a.name}</option>
        ))}
      </select>
      <label class="check">
        <input type="checkbox" checked={handover} onChange={(e) => setHandover((e.target as HTMLInputElement).checked)} />
        {s(t, 'handover')}
      </label>
      <div class="form-actions">
        <button type="submit" disabled={busy}>{s(t, 'save')}</button>
        <button type="button" class="secondary" onClick={props.onDone}>{s(t, 'cancel')}</button>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
    </form>
  );
}

function AgentsTable(props: { t: T; agents: AgentRow[]; refresh: () => void }) {
  const { t, agents } = props;
  const [editing, setEditing] = useState<number | null>(null);
  const [error, setError] = useState('');
  const names = new Map(agents.map((a) => [a.id, a.name]));
  const sorted = [...agents].sort((a, b) => {
    const rank = (x: AgentRow) => (x.absent ? 3 : x.presence === 'online' ? 0 : x.presence === 'away' ? 1 : 2);
    return rank(a) - rank(b) || a.name.localeCompare(b.name, t.lang);
  });
  const back = async (a: AgentRow) => {
    const r = await call<ApiError>('POST', `/api/v1/agents/${a.id}/absence`, { until: null });
    if (r.status === 200) {
      setError('');
      props.refresh();
    } else setError(r.json.error?.message ?? s(t, 'failed'));
  };
  return (
    <div class="table-wrap">
      <table class="agents">
        <caption>{s(t, 'agents')}</caption>
        <thead>
          <tr>
            <th scope="col">{s(t, 'agent')}</th>
            <th scope="col">{s(t, 'state')}</th>
            <th scope="col">{s(t, 'load')}</th>
            <th scope="col">{s(t, 'tickets')}</th>
            <th scope="col">{s(t, 'absence')}</th>
          </tr>
        </thead>
        <tbody>
          {sorted.map((a) => (
            <tr key={a.id} data-agent={a.id} class={a.absent ? 'absent' : a.presence}>
              <th scope="row">{a.name}</th>
              <td><span class={`presence ${a.presence}`}>{s(t, a.presence)}</span></td>
              <td class="load">
                <meter min={0} max={a.capacity} value={Math.min(a.load, a.capacity)} aria-label={`${s(t, 'load')} ${a.name}`} />
                <span class="num">{number(t, a.load, 2)} / {number(t, a.capacity, 2)}</span>
              </td>
              <td class="num open-tickets">{number(t, a.open_tickets)}</td>
              <td class="absence-cell">
                {a.absent && (
                  <span class="absence-note">
                    {s(t, 'absentUntil')} {t.time(a.absent_until)}
                    {' · '}
                    {a.deputy_id ? `${s(t, 'deputy')}: ${names.get(a.deputy_id) ?? '#' + a.deputy_id}` : s(t, 'noDeputy')}
                  </span>
                )}
                {a.absent ? (
                  <button type="button" class="secondary" onClick={() => back(a)}>
                    {s(t, 'endAbsence')}<span class="visually-hidden"> {a.name}</span>
                  </button>
                ) : editing !== a.id && (
                  <button type="button" class="secondary" onClick={() => setEditing(a.id)}>
                    {s(t, 'markAbsent')}<span class="visually-hidden"> {a.name}</span>
                  </button>
                )}
                {editing === a.id && !a.absent && (
                  <AbsenceForm t={t} agent={a} agents={agents} onDone={() => {
                    setEditing(null);
                    props.refresh();
                  }} />
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {error && <p class="error" role="alert">{error}</p>}
    </div>
  );
}

export function Dashboard(props: { me: Agent; t: T }) {
  const { t } = props;
  const [snap, setSnap] = useState<{ data: Snapshot; receivedAt: number } | null>(null);
  const [failed, setFailed] = useState(false);
  const [now, setNow] = useState(Date.now());
  const load = async () => {
    const r = await call<Snapshot>('GET', '/api/v1/dashboard');
    if (r.status === 200) {
      setSnap({ data: r.json, receivedAt: Date.now() });
      setFailed(false);
    } else setFailed(true);
  };
  useEffect(() => {
    load();
    const stop = listen((e) => {
      if (e.type === 'dashboard') setSnap({ data: e.data as Snapshot, receivedAt: Date.now() });
      else if (e.type === 'stream.open') load(); /* what was missed while reconnecting */
    });
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      stop();
      clearInterval(timer);
    };
  }, []);
  const teamRows = useMemo(() => (snap?.data.teams ?? [])
    .filter((g) => g.team_id !== null || g.open > 0)
    .map((g) => ({ key: String(g.team_id ?? 0), name: g.name ?? s(t, 'noTeam'), g })), [snap, t]);
  const channelRows = useMemo(() => (snap?.data.channels ?? [])
    .map((g) => ({ key: g.kind, name: channelName(t, g.kind), g })), [snap, t]);
  if (!snap) {
    return (
      <main class="dashboard" aria-label={t.t('dashboard')}>
        <p class={failed ? 'error' : 'empty'} role={failed ? 'alert' : undefined}>
          {failed ? s(t, 'loadFailed') : s(t, 'loading')}
        </p>
      </main>
    );
  }
  const d = snap.data, today = d.today, tot = d.totals;
  const online = d.agents.filter((a) => a.presence === 'online' && !a.absent).length;
  const longest = waitNow(tot, snap.receivedAt, now);
  return (
    <main class="dashboard" aria-label={t.t('dashboard')}>
      <header class="dash-head">
        <h1>{s(t, 'title')}</h1>
        <p class="updated" aria-live="off">
          {s(t, 'updated')} {clock(t, d.at)}
          <span class="day"> · {s(t, 'day')} {dayOf(t, today)} ({today.time_zone})</span>
        </p>
      </header>
      <section class="tiles" aria-label={s(t, 'title')}>
        <Tile label={s(t, 'queue')} value={number(t, tot.waiting)} tone={tot.waiting > 0 ? 'warn' : undefined} />
        <Tile label={s(t, 'longest')} value={duration(t, longest)} />
        <Tile label={s(t, 'atRisk')} value={number(t, tot.sla_at_risk)} tone={tot.sla_at_risk > 0 ? 'warn' : undefined} />
        <Tile label={s(t, 'breached')} value={number(t, tot.sla_breached)} tone={tot.sla_breached > 0 ? 'bad' : 'good'} />
        <Tile label={s(t, 'agentsOnline')} value={`${number(t, online)} / ${number(t, d.agents.length)}`} />
        <Tile label={s(t, 'created')} value={number(t, today.created)} />
        <Tile label={s(t, 'resolved')} value={number(t, today.resolved)} />
        <Tile label={s(t, 'frt')} value={duration(t, today.first_response.median_seconds)}
          note={today.first_response.count ? `${s(t, 'average')} ${duration(t, today.first_response.average_seconds)}` : undefined} />
        <Tile label={s(t, 'resolution')} value={duration(t, today.resolution.median_seconds)}
          note={today.resolution.count ? `${s(t, 'average')} ${duration(t, today.resolution.average_seconds)}` : undefined} />
        <Tile label={s(t, 'csat')} value={today.csat.average === null ? '—' : number(t, today.csat.average, 2)}
          note={`${number(t, today.csat.count)} ${s(t, 'ratings')}`} />
      </section>
      <section class="chart" aria-labelledby="dash-volume">
        <h2 id="dash-volume">{s(t, 'volume')}</h2>
        <VolumeChart t={t} today={today} now={now} />
      </section>
      <div class="dash-tables">
        <GroupTable t={t} caption={s(t, 'teams')} first={s(t, 'team')} rows={teamRows} receivedAt={snap.receivedAt} now={now} />
        <GroupTable t={t} caption={s(t, 'channels')} first={s(t, 'channel')} rows={channelRows} receivedAt={snap.receivedAt} now={now} />
      </div>
      <AgentsTable t={t} agents={d.agents} refresh={load} />
    </main>
  );
}
