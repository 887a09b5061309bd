// The call log for supervisors (GET /api/v1/calls): every call, newest
// first, with its status, who hung up, the path the caller took in the
// IVR, the queue or agent it was sent to, how long it rang and how long
// it lasted once answered; a status filter and more pages by cursor.
import { useEffect, useState } from 'preact/hooks';
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
};

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
    sec: 'с',
    timeout: 'тишина',
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
    sec: 's',
    timeout: 'silence',
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

export function Calls(props: { me: Agent; t: T }) {
  const { t } = props;
  const [rows, setRows] = useState<CallRow[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [status, setStatus] = useState('');
  const [error, setError] = useState('');
  const [teams, setTeams] = useState<Record<number, string>>({});
  const [agents, setAgents] = useState<Record<number, string>>({});
  const load = async (more: boolean) => {
    setError('');
    const q = [`limit=50`, status ? `status=${status}` : '', more && cursor ? `cursor=${cursor}` : '']
      .filter(Boolean)
      .join('&');
    const r = await call<{ calls: CallRow[]; next_cursor: string | null }>('GET', `/api/v1/calls?${q}`);
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
    <main class="calls" aria-labelledby="calls-title">
      <header class="calls-head">
        <h2 id="calls-title">{s(t, 'title')}</h2>
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
      </header>
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
              </tr>
            </thead>
            <tbody>
              {rows.map((c) => (
                <tr key={c.id} data-call={c.id} class={`call status-${c.status}`}>
                  <td>{t.time(c.offered_at)}</td>
                  <td>{c.from}</td>
                  <td>{c.to}</td>
                  <td><span class={`badge call-${c.status}`}>{s(t, `status.${c.status as (typeof STATUSES)[number]}`)}</span></td>
                  <td class="path">{pathLabel(t, c.ivr_path)}</td>
                  <td>
                    {c.queue_team_id !== null
                      ? `${s(t, 'queue')}: ${teams[c.queue_team_id] ?? '#' + c.queue_team_id}`
                      : c.agent_id !== null
                        ? `${s(t, 'agent')}: ${agents[c.agent_id] ?? '#' + c.agent_id}`
                        : '—'}
                  </td>
                  <td>{seconds(t, c.offered_at, c.answered_at ?? c.ended_at)}</td>
                  <td>{c.answered_at ? seconds(t, c.answered_at, c.ended_at) : '—'}</td>
                  <td>{c.hangup_by ? s(t, `by.${c.hangup_by as 'caller' | 'agent' | 'system'}`) : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {cursor && (
        <button type="button" class="more" onClick={() => load(true)}>{s(t, 'more')}</button>
      )}
    </main>
  );
}
