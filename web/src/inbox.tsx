// The inbox list: every channel in one list, virtualised (only the rows in
// sight are in the page, so 10,000 tickets cost what 20 do), more pages
// fetched as the agent scrolls; each row shows the channel, priority, the
// nearest SLA due time counting down, and an unread mark.
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, type Task, type Ticket } from './api';
import { type Key, type T } from './i18n';

export const ROW_HEIGHT = 76;
const OVERSCAN = 6;

export function statusLabel(t: T, s: string) {
  return t.t(('status.' + s) as Key) ?? s;
}

export function priorityLabel(t: T, p: string) {
  return t.t(('priority.' + p) as Key) ?? p;
}

const CHANNEL_GLYPH: Record<string, string> = {
  api: '⇄',
  webchat: '💬',
  email: '✉',
  phone: '☎',
  telegram: '✈',
  whatsapp: '🟢',
  sms: '✆',
};

export function ChannelIcon(props: { t: T; kind: string | null }) {
  const kind = props.kind ?? 'api';
  const label = props.t.t(('channel.' + kind) as Key) ?? kind;
  return (
    <span class={`ch ch-${kind}`} role="img" aria-label={label} title={label}>
      {CHANNEL_GLYPH[kind] ?? '•'}
    </span>
  );
}

/* The nearest SLA due time of the clocks still running, or null. */
export function nearestDue(k: Ticket): { clock: string; due: number; state: string | null } | null {
  const due = k.sla?.due ?? {};
  const state = k.sla?.state ?? {};
  if (k.status === 'resolved' || k.status === 'closed') return null;
  let best: { clock: string; due: number; state: string | null } | null = null;
  for (const [clock, iso] of Object.entries(due)) {
    if (!iso) continue;
    const st = state[clock] ?? null;
    if (st === 'met' || st === 'missed') continue;
    const at = Date.parse(iso);
    if (!best || at < best.due) best = { clock, due: at, state: st };
  }
  return best;
}

/* "in 12 min", "5 min late": minutes, hours or days, localised. */
export function countdown(t: T, due: number, now: number) {
  const mins = Math.round((due - now) / 60000);
  const abs = Math.abs(mins);
  const rtf = new Intl.RelativeTimeFormat(t.lang, { numeric: 'always', style: 'short' });
  if (abs < 60) return rtf.format(mins, 'minute');
  if (abs < 48 * 60) return rtf.format(Math.round(mins / 60), 'hour');
  return rtf.format(Math.round(mins / 1440), 'day');
}

/* Re-renders every `ms` so countdowns move. */
export function useNow(ms = 30000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}

export function Inbox(props: {
  t: T;
  tickets: Ticket[];
  selected: number | null;
  unread: Set<number>;
  more: boolean;
  onMore: () => void;
  onSelect: (n: number) => void;
  label: string;
}) {
  const { t } = props;
  const box = useRef<HTMLUListElement>(null);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(800);
  const now = useNow();
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const measure = () => setHeight(el.clientHeight || 800);
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, [props.tickets.length === 0]);
  // keep the selected row in sight (j/k)
  useEffect(() => {
    const el = box.current;
    const i = props.tickets.findIndex((k) => k.number === props.selected);
    if (!el || i < 0) return;
    const y = i * ROW_HEIGHT;
    if (y < el.scrollTop) el.scrollTop = y;
    else if (y + ROW_HEIGHT > el.scrollTop + el.clientHeight) el.scrollTop = y + ROW_HEIGHT - el.clientHeight;
  }, [props.selected]);
  if (props.tickets.length === 0) return <p class="empty">{t.t('noTickets')}</p>;
  const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(props.tickets.length, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
  const onScroll = (e: Event) => {
    const el = e.currentTarget as HTMLElement;
    setTop(el.scrollTop);
    if (props.more && el.scrollTop + el.clientHeight > props.tickets.length * ROW_HEIGHT - 10 * ROW_HEIGHT)
      props.onMore();
  };
  return (
    <ul class="tickets" role="listbox" aria-label={props.label} ref={box} onScroll={onScroll}
      data-count={props.tickets.length}>
      <li class="spacer" aria-hidden="true" style={{ height: `${first * ROW_HEIGHT}px` }} />
      {props.tickets.slice(first, last).map((k, i) => {
        const due = nearestDue(k);
        const late = due !== null && (due.due < now || due.state === 'breached');
        return (
          <li key={k.number} role="option" aria-selected={props.selected === k.number} aria-posinset={first + i + 1}
            aria-setsize={props.tickets.length}
            class={`ticket prio-${k.priority}${props.selected === k.number ? ' selected' : ''}`}
            data-number={k.number} onClick={() => props.onSelect(k.number)}>
            <div class="row1">
              <ChannelIcon t={t} kind={k.channel_kind} />
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
              {due && (
                <span class={`sla-due${late ? ' late' : due.state === 'warning' ? ' warning' : ''}`}
                  title={t.time(new Date(due.due).toISOString())}>
                  {t.t('slaShort')} {countdown(t, due.due, now)}
                </span>
              )}
            </div>
          </li>
        );
      })}
      <li class="spacer" aria-hidden="true" style={{ height: `${(props.tickets.length - last) * ROW_HEIGHT}px` }} />
    </ul>
  );
}

export function Tasks(props: { t: T; version: number; onOpen: (n: number) => void }) {
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
  const open = tasks.filter((k) => k.status === 'open');
  if (open.length === 0) return <p class="empty">{t.t('noTasks')}</p>;
  // call backs first (a customer waits for the phone to ring), then by due time
  const sorted = [...open].sort(
    (a, b) =>
      (a.kind === 'call_back' ? 0 : 1) - (b.kind === 'call_back' ? 0 : 1) || Date.parse(a.due_at) - Date.parse(b.due_at),
  );
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
