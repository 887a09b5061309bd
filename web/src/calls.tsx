// The call log for supervisors (GET /api/v1/calls): every call, newest
// first, with its status, who hung up, the path the caller took in the
// IVR, the queue or agent it was sent to, how long it rang and how long
// it lasted once answered, its ticket and its recording (a player); a
// status filter and more pages by cursor. Beside it, the missed calls not
// yet called back (GET /api/v1/calls/missed): one row per customer with
// their attempts, the ticket and the call-back task, together with the
// website's call-back requests that no missed call accounts for (marked as
// such), how many of each, and the same as CSV.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, listen, type Agent } from './api';
import { number, strings, type T } from './i18n';

type CallRow = {
  id: number;
  direction: string;
  from: string;
  to: string;
  did: string | null;
  status: string;
  hangup_by: string | null;
  hangup_cause: string | null;
  sip_code: number | null;
  ivr_path: string;
  queue_team_id: number | null;
  agent_id: number | null;
  offered_at: string;
  answered_at: string | null;
  ended_at: string;
  ticket_number?: number | null;
  recording_url?: string | null;
  recording_deleted_by?: string | null; // 'retention': the file is gone, the row stays
  rating?: number | null; // the post-call rating, 1-5 (a queue or number with "rating")
  talk_ended_at?: string | null; // the agent hung up then, and the caller stayed to rate
  period?: 'business_hours' | 'after_hours' | 'holiday' | null; // of the number's calendar when it came
};

type MissedRow = {
  kind: 'call' | 'web_request';
  call_id: number | null; // the last call (null: a website request)
  callback_id: number | null; // the website request: the row's own, or one that joined a call's task
  phone: string;
  name: string | null; // the name the website's form gave
  status: string; // a call's, or a request's: queued, calling, failed, done
  requested_at: string | null;
  last_call_at: string | null;
  first_call_at: string | null;
  waited_seconds: number | null;
  due_at: string | null;
  queue_team_id: number | null;
  queue_name: string | null;
  ticket_number: number | null;
  attempts: number;
  contact: { id: number; name: string | null } | null;
  task: { id: number; status: string; due_at: string; done_at: string | null } | null;
};

type MissedTotals = { all: number; missed_calls: number; web_requests: number };

const STATUSES = ['answered', 'missed', 'abandoned', 'busy', 'voicemail', 'rejected', 'failed'] as const;

const s = strings({
  ru: {
    title: 'Звонки',
    status: 'Статус',
    all: 'Все',
    when: 'Когда',
    from: 'Кто звонил',
    to: 'Номер',
    path: 'Путь в меню',
    where: 'Куда направлен',
    wait: 'Ожидание',
    talk: 'Длительность',
    ended: 'Завершил',
    more: 'Показать ещё',
    refresh: 'Обновить',
    empty: 'Звонков нет',
    failed: 'Не удалось загрузить звонки',
    queue: 'очередь',
    agent: 'оператор',
    'period.after_hours': 'нерабочее время',
    'period.holiday': 'праздник',
    'status.answered': 'отвечен',
    'status.missed': 'пропущен',
    'status.abandoned': 'брошен',
    'status.busy': 'занято',
    'status.voicemail': 'голосовая почта',
    'status.rejected': 'отклонён',
    'status.failed': 'сбой',
    'by.caller': 'клиент',
    'by.agent': 'оператор',
    'by.system': 'система',
    rating: 'Оценка',
    ratingOf: 'из 5',
    sec: 'с',
    timeout: 'тишина',
    tabs: 'Разделы звонков',
    log: 'Журнал',
    missed: 'Пропущенные',
    ticket: 'Обращение',
    recording: 'Запись',
    'recording.deleted': 'удалена по сроку хранения',
    show: 'Показать',
    'show.open': 'ждут перезвона',
    'show.all': 'все',
    lastCall: 'Последний звонок',
    queueCol: 'Очередь',
    attempts: 'Попыток',
    callBack: 'Перезвон',
    due: 'до',
    calledBack: 'перезвонили',
    cancelled: 'отменён',
    noTask: 'без задачи',
    csv: 'Скачать CSV',
    emptyMissed: 'Пропущенных звонков нет',
    webRequest: 'заявка с сайта',
    alsoWeb: 'и заявка с сайта',
    missedTotals: 'Всего: {all} (пропущенных звонков: {calls}, заявок с сайта: {web})',
    queues: 'Очереди',
    requests: 'Заявки с сайта',
    'req.phone': 'Номер',
    'req.status': 'Состояние',
    'req.attempts': 'Попытки',
    'req.next': 'Следующая попытка',
    'req.last': 'Последний результат',
    'req.cancel': 'Отменить',
    'req.empty': 'Заявок на обратный звонок нет',
    'req.status.queued': 'в очереди',
    'req.status.calling': 'звоним',
    'req.status.done': 'дозвонились',
    'req.status.failed': 'не дозвонились',
    'req.status.refused': 'отклонена',
    'req.status.cancelled': 'отменена',
    period: 'За',
    'period.today': 'сегодня',
    'period.week': '7 дней',
    'period.month': '30 дней',
    offered: 'Поступило',
    answeredCol: 'Отвечено',
    abandonedCol: 'Брошено',
    missedCol: 'Пропущено',
    voicemailCol: 'Голосовая почта',
    asa: 'Среднее ожидание ответа',
    sl: 'Уровень сервиса',
    slHint: 'отвечено за 20 с из отвеченных и брошенных',
    abandonRate: 'Доля брошенных',
    talkAvg: 'Средний разговор',
    ratingAvg: 'Средняя оценка',
    ratingHint: 'оценки клиентов после разговора, от 1 до 5; в скобках — сколько звонков оценено',
    emptyQueues: 'Звонков в очереди за этот период не было',
  },
  en: {
    title: 'Calls',
    status: 'Status',
    all: 'All',
    when: 'When',
    from: 'Caller',
    to: 'Number',
    path: 'Menu path',
    where: 'Sent to',
    wait: 'Wait',
    talk: 'Duration',
    ended: 'Hung up by',
    more: 'Show more',
    refresh: 'Refresh',
    empty: 'No calls',
    failed: 'Could not load the calls',
    queue: 'queue',
    agent: 'agent',
    'period.after_hours': 'after hours',
    'period.holiday': 'holiday',
    'status.answered': 'answered',
    'status.missed': 'missed',
    'status.abandoned': 'abandoned',
    'status.busy': 'busy',
    'status.voicemail': 'voicemail',
    'status.rejected': 'rejected',
    'status.failed': 'failed',
    'by.caller': 'caller',
    'by.agent': 'agent',
    'by.system': 'system',
    rating: 'Rating',
    ratingOf: 'of 5',
    sec: 's',
    timeout: 'silence',
    tabs: 'Call views',
    log: 'Call log',
    missed: 'Missed calls',
    ticket: 'Ticket',
    recording: 'Recording',
    'recording.deleted': 'deleted by retention',
    show: 'Show',
    'show.open': 'not called back',
    'show.all': 'all',
    lastCall: 'Last call',
    queueCol: 'Queue',
    attempts: 'Attempts',
    callBack: 'Call back',
    due: 'due',
    calledBack: 'called back',
    cancelled: 'cancelled',
    noTask: 'no task',
    csv: 'Download CSV',
    emptyMissed: 'No missed calls',
    webRequest: 'website request',
    alsoWeb: 'also asked on the website',
    missedTotals: 'Total: {all} (missed calls: {calls}, website requests: {web})',
    queues: 'Queues',
    requests: 'Website requests',
    'req.phone': 'Number',
    'req.status': 'State',
    'req.attempts': 'Attempts',
    'req.next': 'Next attempt',
    'req.last': 'Last result',
    'req.cancel': 'Cancel',
    'req.empty': 'No call-back requests',
    'req.status.queued': 'queued',
    'req.status.calling': 'calling',
    'req.status.done': 'reached',
    'req.status.failed': 'not reached',
    'req.status.refused': 'refused',
    'req.status.cancelled': 'cancelled',
    period: 'For',
    'period.today': 'today',
    'period.week': '7 days',
    'period.month': '30 days',
    offered: 'Offered',
    answeredCol: 'Answered',
    abandonedCol: 'Abandoned',
    missedCol: 'Missed',
    voicemailCol: 'Voicemail',
    asa: 'Average speed of answer',
    sl: 'Service level',
    slHint: 'answered within 20 s, of the answered and abandoned',
    abandonRate: 'Abandonment rate',
    talkAvg: 'Average talk',
    ratingAvg: 'Average rating',
    ratingHint: 'callers’ ratings after the call, 1 to 5; in brackets, how many calls were rated',
    emptyQueues: 'No queue calls in this period',
  },
});

/* Seconds between two instants, "—" when either is missing. */
function seconds(t: T, from: string | null, to: string | null) {
  if (!from || !to) return '—';
  return `${number(t, Math.max(0, Math.round((Date.parse(to) - Date.parse(from)) / 1000)))} ${s(t, 'sec')}`;
}

/* "1 > 2 > (silence)": the IVR's "t" is a timeout. */
function pathLabel(t: T, path: string) {
  if (!path) return '—';
  return path
    .split('>')
    .map((k) => (k === 't' ? `(${s(t, 'timeout')})` : k))
    .join(' › ');
}

/* A player for a call's recording: the browser asks for it in ranges
 * (seeking) and only when played (preload none). */
export function Recording(props: { t: T; url: string }) {
  return <audio class="recording" controls preload="none" src={props.url} aria-label={s(props.t, 'recording')} />;
}

function TicketLink(props: { n: number | null | undefined }) {
  return props.n ? <a href={`#/t/${props.n}`} class="ticket-link">#{props.n}</a> : <>—</>;
}

export function Calls(props: { me: Agent; t: T }) {
  const { t } = props;
  const [tab, setTab] = useState<'log' | 'missed' | 'queues' | 'requests'>('log');
  return (
    <main class="calls" aria-labelledby="calls-title">
      <header class="calls-head">
        <h2 id="calls-title">{s(t, 'title')}</h2>
        <div role="tablist" aria-label={s(t, 'tabs')} class="calls-tabs">
          {(['log', 'missed', 'queues', 'requests'] as const).map((x) => (
            <button type="button" role="tab" key={x} aria-selected={tab === x} class={tab === x ? 'active' : ''}
              onClick={() => setTab(x)}>{s(t, x)}</button>
          ))}
        </div>
      </header>
      {tab === 'log' ? <CallLog t={t} /> : tab === 'missed' ? <MissedCalls t={t} /> : tab === 'queues' ? <QueueFigures t={t} /> : <CallbackRequests t={t} />}
    </main>
  );
}

/* Lists here reload when a filter changes, on reconnect and on events, so
 * requests overlap; only the latest one's answer may be shown (an older,
 * slower answer for the previous filter must not overwrite it). begin() is
 * called as a load starts; the function it returns says whether that load
 * is still the latest. */
function useLatestOnly(): () => () => boolean {
  const latest = useRef(0);
  return () => {
    const mine = ++latest.current;
    return () => mine === latest.current;
  };
}

/* A list read from `url` (its `key` array), again whenever `deps` change
 * or the stream says so (`when`); the latest load wins. */
function useApiList<R>(t: T, url: string, key: string, deps: unknown[], when: (type: string) => boolean) {
  const [rows, setRows] = useState<R[] | null>(null);
  const [body, setBody] = useState<Record<string, unknown> | null>(null); // the whole answer
  const [error, setError] = useState('');
  const begin = useLatestOnly();
  const load = async () => {
    const current = begin();
    setError('');
    const r = await call<Record<string, R[]>>('GET', url);
    if (!current()) return;
    if (r.status !== 200) {
      setError(s(t, 'failed'));
      return;
    }
    setRows(r.json[key]);
    setBody(r.json);
  };
  useEffect(() => {
    load();
    return listen((e) => {
      if (e.type === 'stream.open' || when(e.type)) load();
    });
  }, deps);
  return { rows, body, error, setError, load };
}

/* The "show" filter above a list: those still to call back, or all. */
function ShowSelect<V extends string>(props: { t: T; value: V; open: V; onChange: (v: V) => void; load: () => void }) {
  const { t } = props;
  return (
    <>
      <label>
        {s(t, 'show')}{' '}
        <select name="show" value={props.value} onChange={(e) => props.onChange((e.target as HTMLSelectElement).value as V)}>
          <option value={props.open}>{s(t, 'show.open')}</option>
          <option value="all">{s(t, 'show.all')}</option>
        </select>
      </label>
      <button type="button" onClick={() => props.load()}>{s(t, 'refresh')}</button>
    </>
  );
}

type SKey = Parameters<typeof s>[1];
/* A column heading: its text, with a tooltip (`hint`) or read by screen
 * readers only (`hidden`). */
type Col = SKey | { key: SKey; hint?: SKey; hidden?: boolean };

/* A list's error, its empty text, or its table (headings from `cols`,
 * rows as children). */
function ListTable(props: { t: T; rows: unknown[] | null; error: string; empty: SKey; name: string; cols: Col[];
  children: ComponentChildren }) {
  const { t } = props;
  return (
    <>
      {props.error && <p class="error" role="alert">{props.error}</p>}
      {props.rows !== null && props.rows.length === 0 && !props.error ? (
        <p class="empty">{s(t, props.empty)}</p>
      ) : (
        <div class="table-wrap">
          <table class={`calls-table ${props.name}`}>
            <thead>
              <tr>
                {props.cols.map((c) => {
                  const col = typeof c === 'string' ? { key: c } : c;
                  return (
                    <th scope="col" key={col.key} title={col.hint ? s(t, col.hint) : undefined}>
                      {col.hidden ? <span class="visually-hidden">{s(t, col.key)}</span> : s(t, col.key)}
                    </th>
                  );
                })}
              </tr>
            </thead>
            <tbody>{props.children}</tbody>
          </table>
        </div>
      )}
    </>
  );
}

function CallLog(props: { t: T }) {
  const { t } = props;
  const [rows, setRows] = useState<CallRow[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [status, setStatus] = useState('');
  const [error, setError] = useState('');
  const [teams, setTeams] = useState<Record<number, string>>({});
  const [agents, setAgents] = useState<Record<number, string>>({});
  const begin = useLatestOnly();
  const load = async (more: boolean) => {
    const current = begin();
    setError('');
    const q = [`limit=50`, status ? `status=${status}` : '', more && cursor ? `cursor=${cursor}` : '']
      .filter(Boolean)
      .join('&');
    const r = await call<{ calls: CallRow[]; next_cursor: string | null }>('GET', `/api/v1/calls?${q}`);
    if (!current()) return;
    if (r.status !== 200) {
      setError(s(t, 'failed'));
      return;
    }
    setRows(more ? [...rows, ...r.json.calls] : r.json.calls);
    setCursor(r.json.next_cursor);
  };
  useEffect(() => {
    load(false);
  }, [status]);
  useEffect(() => {
    call<{ teams: { id: number; name: string }[] }>('GET', '/api/v1/teams').then((r) => {
      if (r.status === 200) setTeams(Object.fromEntries(r.json.teams.map((x) => [x.id, x.name])));
    });
    call<{ agents: { id: number; name: string }[] }>('GET', '/api/v1/agents').then((r) => {
      if (r.status === 200) setAgents(Object.fromEntries(r.json.agents.map((x) => [x.id, x.name])));
    });
    // after a reconnect the list may have missed calls
    return listen((e) => {
      if (e.type === 'stream.open') load(false);
    });
  }, []);
  return (
    <>
      <div class="calls-head">
        <label>
          {s(t, 'status')}{' '}
          <select name="status" value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
            <option value="">{s(t, 'all')}</option>
            {STATUSES.map((x) => (
              <option value={x} key={x}>{s(t, `status.${x}`)}</option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => load(false)}>{s(t, 'refresh')}</button>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      {rows.length === 0 && !error ? (
        <p class="empty">{s(t, 'empty')}</p>
      ) : (
        <div class="table-wrap">
          <table class="calls-table">
            <thead>
              <tr>
                <th scope="col">{s(t, 'when')}</th>
                <th scope="col">{s(t, 'from')}</th>
                <th scope="col">{s(t, 'to')}</th>
                <th scope="col">{s(t, 'status')}</th>
                <th scope="col">{s(t, 'path')}</th>
                <th scope="col">{s(t, 'where')}</th>
                <th scope="col">{s(t, 'wait')}</th>
                <th scope="col">{s(t, 'talk')}</th>
                <th scope="col">{s(t, 'ended')}</th>
                <th scope="col">{s(t, 'rating')}</th>
                <th scope="col">{s(t, 'ticket')}</th>
                <th scope="col">{s(t, 'recording')}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((c) => (
                <tr key={c.id} data-call={c.id} class={`call status-${c.status}`}>
                  <td>{t.time(c.offered_at)}</td>
                  <td>{c.from}</td>
                  <td>{c.to}</td>
                  <td>
                    <span class={`badge call-${c.status}`}>{s(t, `status.${c.status as (typeof STATUSES)[number]}`)}</span>
                    {c.period && c.period !== 'business_hours' && (
                      <span class="badge period" data-period={c.period}>{s(t, `period.${c.period}`)}</span>
                    )}
                  </td>
                  <td class="path">{pathLabel(t, c.ivr_path)}</td>
                  <td>
                    {c.queue_team_id !== null
                      ? `${s(t, 'queue')}: ${teams[c.queue_team_id] ?? '#' + c.queue_team_id}`
                      : c.agent_id !== null
                        ? `${s(t, 'agent')}: ${agents[c.agent_id] ?? '#' + c.agent_id}`
                        : '—'}
                  </td>
                  <td>{seconds(t, c.offered_at, c.answered_at ?? c.ended_at)}</td>
                  <td>{c.answered_at ? seconds(t, c.answered_at, c.talk_ended_at ?? c.ended_at) : '—'}</td>
                  <td>{c.hangup_by ? s(t, `by.${c.hangup_by as 'caller' | 'agent' | 'system'}`) : '—'}</td>
                  <td class="rating">{c.rating ? `${number(t, c.rating)} ${s(t, 'ratingOf')}` : '—'}</td>
                  <td><TicketLink n={c.ticket_number} /></td>
                  <td>
                    {c.recording_url ? (
                      <Recording t={t} url={c.recording_url} />
                    ) : c.recording_deleted_by ? (
                      <span class="recording-deleted">{s(t, 'recording.deleted')}</span>
                    ) : (
                      '—'
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {cursor && (
        <button type="button" class="more" onClick={() => load(true)}>{s(t, 'more')}</button>
      )}
    </>
  );
}

/* The call-back task's state: due (when), called back, or none. */
function taskLabel(t: T, task: MissedRow['task']) {
  if (!task) return s(t, 'noTask');
  if (task.status === 'done') return s(t, 'calledBack');
  if (task.status === 'cancelled') return s(t, 'cancelled');
  return `${s(t, 'due')} ${t.time(task.due_at)}`;
}

/* A website request's state, and by when it is to be called while pending. */
function requestLabel(t: T, m: MissedRow) {
  const state = s(t, `req.status.${m.status as CallbackRow['status']}`);
  const pending = m.status === 'queued' || m.status === 'calling';
  return pending && m.due_at ? `${state}, ${s(t, 'due')} ${t.time(m.due_at)}` : state;
}

function MissedCalls(props: { t: T }) {
  const { t } = props;
  const [show, setShow] = useState<'open' | 'all'>('open');
  // a call ends or a task changes (a website request makes one): the list may change
  const { rows, body, error, load } = useApiList<MissedRow>(t, `/api/v1/calls/missed?status=${show}`, 'calls', [show],
    (type) => type.startsWith('task.'));
  const totals = body?.totals as MissedTotals | undefined;
  const csv = `/api/v1/calls/missed?status=${show}&format=csv&lang=${t.lang}${t.lang === 'ru' ? '&delimiter=semicolon' : ''}`;
  return (
    <>
      <div class="calls-head">
        <ShowSelect t={t} value={show} open="open" onChange={setShow} load={load} />
        <a class="csv" href={csv} download>{s(t, 'csv')}</a>
        {totals && totals.all > 0 && (
          <span class="missed-totals" aria-live="polite">
            {s(t, 'missedTotals').replace('{all}', number(t, totals.all))
              .replace('{calls}', number(t, totals.missed_calls)).replace('{web}', number(t, totals.web_requests))}
          </span>
        )}
      </div>
      <ListTable t={t} rows={rows} error={error} empty="emptyMissed" name="missed-table"
        cols={['lastCall', 'from', 'ticket', 'queueCol', 'wait', 'attempts', 'callBack']}>
              {(rows ?? []).map((m) => {
                const web = m.kind === 'web_request';
                const who = m.contact?.name || m.name;
                return (
                  <tr key={`${m.kind}-${m.call_id ?? m.callback_id}`}
                    data-call={web ? undefined : m.call_id ?? undefined}
                    data-request={web ? m.callback_id ?? undefined : undefined}
                    class={`missed kind-${m.kind} task-${m.task?.status ?? 'none'}`}>
                    <td>{t.time(web ? m.requested_at : m.last_call_at)}</td>
                    <td>
                      {who ? <>{who} </> : null}
                      <span class="phone">{m.phone}</span>
                      {web ? (
                        <> <span class="badge web-request">{s(t, 'webRequest')}</span></>
                      ) : m.callback_id ? (
                        <> <span class="badge web-request">{s(t, 'alsoWeb')}</span></>
                      ) : null}
                    </td>
                    <td><TicketLink n={m.ticket_number} /></td>
                    <td>{m.queue_name ?? '—'}</td>
                    <td>{m.waited_seconds === null ? '—' : `${number(t, m.waited_seconds)} ${s(t, 'sec')}`}</td>
                    <td>{number(t, m.attempts)}</td>
                    <td>{web ? requestLabel(t, m) : taskLabel(t, m.task)}</td>
                  </tr>
                );
              })}
      </ListTable>
    </>
  );
}

type QueueRow = {
  team_id: number;
  team_name: string;
  offered: number;
  answered: number;
  abandoned: number;
  missed: number;
  voicemail: number;
  asa_seconds: number;
  abandon_wait_seconds: number;
  talk_seconds: number;
  service_level: number;
  abandonment_rate: number;
  rating_count: number;
  rating_average: number | null; // null: nobody rated
};

/* How well each team answers the phone (GET /api/v1/calls/queues): offered,
 * answered, abandoned, ASA, service level, abandonment, over a period. */
function QueueFigures(props: { t: T }) {
  const { t } = props;
  const [rows, setRows] = useState<QueueRow[] | null>(null);
  const [period, setPeriod] = useState<'today' | 'week' | 'month'>('today');
  const [error, setError] = useState('');
  const begin = useLatestOnly();
  const load = async () => {
    const current = begin();
    setError('');
    const from = new Date();
    if (period === 'today') from.setHours(0, 0, 0, 0);
    else from.setTime(from.getTime() - (period === 'week' ? 7 : 30) * 86400000);
    const r = await call<{ queues: QueueRow[] }>('GET', `/api/v1/calls/queues?from=${encodeURIComponent(from.toISOString())}`);
    if (!current()) return;
    if (r.status !== 200) {
      setError(s(t, 'failed'));
      return;
    }
    setRows(r.json.queues);
  };
  useEffect(() => {
    load();
  }, [period]);
  const pct = (x: number) => `${number(t, Math.round(x * 1000) / 10)} %`;
  const secs = (x: number) => `${number(t, Math.round(x * 10) / 10)} ${s(t, 'sec')}`;
  return (
    <>
      <div class="calls-head">
        <label>
          {s(t, 'period')}{' '}
          <select name="period" value={period}
            onChange={(e) => setPeriod((e.target as HTMLSelectElement).value as 'today' | 'week' | 'month')}>
            {(['today', 'week', 'month'] as const).map((p) => <option key={p} value={p}>{s(t, `period.${p}`)}</option>)}
          </select>
        </label>
        <button type="button" onClick={() => load()}>{s(t, 'refresh')}</button>
      </div>
      <ListTable t={t} rows={rows} error={error} empty="emptyQueues" name="queues-table"
        cols={['queueCol', 'offered', 'answeredCol', 'abandonedCol', 'missedCol', 'voicemailCol', 'asa',
          { key: 'sl', hint: 'slHint' }, 'abandonRate', 'talkAvg', { key: 'ratingAvg', hint: 'ratingHint' }]}>
              {(rows ?? []).map((q) => (
                <tr key={q.team_id} data-team={q.team_id}>
                  <th scope="row">{q.team_name}</th>
                  <td>{number(t, q.offered)}</td>
                  <td>{number(t, q.answered)}</td>
                  <td>{number(t, q.abandoned)}</td>
                  <td>{number(t, q.missed)}</td>
                  <td>{number(t, q.voicemail)}</td>
                  <td>{secs(q.asa_seconds)}</td>
                  <td>{pct(q.service_level)}</td>
                  <td>{pct(q.abandonment_rate)}</td>
                  <td>{secs(q.talk_seconds)}</td>
                  <td class="rating">
                    {q.rating_average !== null && q.rating_average !== undefined
                      ? `${number(t, Math.round(q.rating_average * 10) / 10)} (${number(t, q.rating_count)})`
                      : '—'}
                  </td>
                </tr>
              ))}
      </ListTable>
    </>
  );
}

type CallbackRow = {
  id: number;
  phone: string;
  name: string | null;
  comment: string | null;
  status: 'queued' | 'calling' | 'done' | 'failed' | 'refused' | 'cancelled';
  attempts: number;
  max_attempts: number;
  next_attempt_at: string | null;
  last_result: string | null;
  ticket_number: number | null;
  created_at: string;
};

/* The website's call-back requests (GET /api/v1/callbacks): those still to
 * be called first; a queued one can be cancelled. */
function CallbackRequests(props: { t: T }) {
  const { t } = props;
  const [show, setShow] = useState<'pending' | 'all'>('pending');
  // a request's call ends as a call, and its task changes
  const { rows, error, setError, load } = useApiList<CallbackRow>(t, `/api/v1/callbacks?status=${show}`, 'callbacks',
    [show], (type) => type.startsWith('task.') || type === 'call.ended');
  const cancel = async (id: number) => {
    const r = await call('DELETE', `/api/v1/callbacks/${id}`);
    if (r.status !== 200) setError(s(t, 'failed'));
    load();
  };
  return (
    <>
      <div class="calls-head">
        <ShowSelect t={t} value={show} open="pending" onChange={setShow} load={load} />
      </div>
      <ListTable t={t} rows={rows} error={error} empty="req.empty" name="requests-table"
        cols={['req.phone', 'req.status', 'req.attempts', 'req.next', 'req.last', 'ticket',
          { key: 'req.cancel', hidden: true }]}>
              {(rows ?? []).map((x) => (
                <tr key={x.id} data-request={x.id} class={`request request-${x.status}`}>
                  <td>
                    {x.name ? <>{x.name} </> : null}
                    <span class="phone">{x.phone}</span>
                    {x.comment ? <div class="muted">{x.comment}</div> : null}
                  </td>
                  <td>{s(t, `req.status.${x.status}`)}</td>
                  <td>{`${number(t, x.attempts)} / ${number(t, x.max_attempts)}`}</td>
                  <td>{x.next_attempt_at && (x.status === 'queued' || x.status === 'calling') ? t.time(x.next_attempt_at) : '—'}</td>
                  <td>{x.last_result ?? '—'}</td>
                  <td><TicketLink n={x.ticket_number} /></td>
                  <td>
                    {x.status === 'queued' && (
                      <button type="button" onClick={() => cancel(x.id)}>{s(t, 'req.cancel')}</button>
                    )}
                  </td>
                </tr>
              ))}
      </ListTable>
    </>
  );
}
