// The incoming-call pop: while the agent's phone rings for a call, a banner
// at the top of the workspace says who calls (the customer's name, or a
// new customer), their number and the queue, with a button that opens the
// customer's latest ticket (its card and history). Once the agent answers
// it says they are on the call, with a running timer, and the ticket opens
// by itself unless they are typing; when the call ends (or another agent
// took it, or the ring timed out) the banner goes. Several calls ringing at
// once (ring_all) stack. The daemon sends call.ringing, call.answered and
// call.ended only to the agent's own tabs.
import { useEffect, useState } from 'preact/hooks';
import { call, listen, type Agent, type StreamEvent } from './api';
import { strings, type T } from './i18n';

type CallInfo = {
  call_id: number;
  agent_id: number;
  from: string;
  direction?: 'in' | 'out'; /* out: click-to-call / call-back, the agent's phone rings first */
  to: string;
  queue_team_id?: number;
  contact_id?: number;
  contact_name?: string;
  ticket_number?: number;
};
type Pop = CallInfo & { talking: boolean; since: number };

const s = strings({
  ru: {
    region: 'Звонки',
    ringing: 'Входящий звонок',
    outgoing: 'Исходящий звонок',
    talking: 'Разговор',
    newCustomer: 'Новый клиент',
    customer: 'Клиент',
    queue: 'Очередь',
    open: 'Открыть карточку',
    dismiss: 'Скрыть',
    duration: 'Длительность разговора',
  },
  en: {
    region: 'Calls',
    ringing: 'Incoming call',
    outgoing: 'Outgoing call',
    talking: 'On the call',
    newCustomer: 'New customer',
    customer: 'Customer',
    queue: 'Queue',
    open: 'Open card',
    dismiss: 'Dismiss',
    duration: 'Call duration',
  },
});

/* +7 999 123-45-67 for Russian and Kazakh numbers (11 digits from 7 or 8),
 * anything else as it came. */
export function formatPhone(raw: string): string {
  const d = raw.replace(/[\s()+-]/g, '');
  if (/^[78]\d{10}$/.test(d) && /^\+?[\d\s()-]+$/.test(raw))
    return `+7 ${d.slice(1, 4)} ${d.slice(4, 7)}-${d.slice(7, 9)}-${d.slice(9, 11)}`;
  return raw;
}

function clock(ms: number): string {
  const sec = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(sec / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const ss = String(sec % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/* The teams' names, asked once per page and only when a queue call comes. */
let teamNames: Promise<Record<number, string>> | null = null;
function teams(): Promise<Record<number, string>> {
  teamNames ??= call<{ teams: { id: number; name: string }[] }>('GET', '/api/v1/teams')
    .then((r) => (r.status === 200 ? Object.fromEntries(r.json.teams.map((x) => [x.id, x.name])) : {}))
    .catch(() => ({}));
  return teamNames;
}

/* Is the agent writing something (a reply, a note, a field)? Then the
 * ticket does not open by itself: it would take their focus or their draft. */
function busyTyping(): boolean {
  const a = document.activeElement as HTMLInputElement | HTMLTextAreaElement | null;
  if (a && (a.tagName === 'TEXTAREA' || (a.tagName === 'INPUT' && /^(text|search|email|url|tel|)$/.test(a.type))) &&
    a.value.trim() !== '')
    return true;
  return Array.from(document.querySelectorAll<HTMLTextAreaElement>('.composer textarea')).some((x) => x.value.trim() !== '');
}

/* Opens ticket n in the inbox (#/t/n), also when the address already says so. */
function openTicket(n: number) {
  const want = `#/t/${n}`;
  if (location.hash === want) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = want;
}

export function CallPop(props: { me: Agent; t: T }) {
  const { t } = props;
  const [pops, setPops] = useState<Pop[]>([]);
  const [names, setNames] = useState<Record<number, string>>({});
  const [now, setNow] = useState(Date.now());

  useEffect(
    () =>
      listen((e: StreamEvent) => {
        const d = e.data as CallInfo | undefined;
        if (e.type === 'stream.open') {
          // reconnected: an end may have been missed while away; a ring is short, a talk is not
          setPops((list) => list.filter((p) => p.talking));
          return;
        }
        if (!e.type.startsWith('call.') || !d || typeof d.call_id !== 'number') return;
        if (d.agent_id !== undefined && d.agent_id !== props.me.id) return;
        if (e.type === 'call.ended') {
          setPops((list) => list.filter((p) => p.call_id !== d.call_id));
          return;
        }
        if (e.type !== 'call.ringing' && e.type !== 'call.answered') return;
        const talking = e.type === 'call.answered';
        if (d.queue_team_id) teams().then(setNames);
        setPops((list) => {
          const had = list.find((p) => p.call_id === d.call_id);
          if (had && had.talking && !talking) return list; // a late ring after the answer
          const pop: Pop = { ...d, talking, since: talking && had?.talking ? had.since : Date.now() };
          return had ? list.map((p) => (p.call_id === d.call_id ? pop : p)) : [...list, pop];
        });
        if (talking && d.ticket_number && !busyTyping()) openTicket(d.ticket_number);
      }),
    [props.me.id],
  );

  const talking = pops.some((p) => p.talking);
  useEffect(() => {
    if (!talking) return;
    setNow(Date.now());
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, [talking]);

  const dismiss = (id: number) => setPops((list) => list.filter((p) => p.call_id !== id));

  return (
    <div class="callpops" role="status" aria-live="polite" aria-label={s(t, 'region')}>
      {pops.map((p) => {
        const who = p.contact_name || (p.contact_id ? s(t, 'customer') : s(t, 'newCustomer'));
        const team = p.queue_team_id ? names[p.queue_team_id] : undefined;
        return (
          <div key={p.call_id} class={`callpop ${p.talking ? 'talking' : 'ringing'}`} data-call={p.call_id}>
            <span class="callpop-state">{p.talking ? s(t, 'talking') : s(t, p.direction === 'out' ? 'outgoing' : 'ringing')}</span>
            <span class="callpop-who">
              <strong class={p.contact_id ? 'callpop-name' : 'callpop-name new'}>{who}</strong>{' '}
              <span class="callpop-number">{formatPhone(p.direction === 'out' ? p.to : p.from)}</span>
            </span>
            {team && <span class="callpop-queue">{s(t, 'queue')}: {team}</span>}
            {p.talking && (
              <span class="callpop-timer" role="timer" aria-live="off" aria-label={s(t, 'duration')}>
                {clock(now - p.since)}
              </span>
            )}
            <span class="callpop-actions">
              {p.ticket_number ? (
                <button type="button" class="callpop-open" onClick={() => openTicket(p.ticket_number!)}>
                  {s(t, 'open')} #{p.ticket_number}
                </button>
              ) : null}
              <button type="button" class="x" aria-label={s(t, 'dismiss')} title={s(t, 'dismiss')}
                onClick={() => dismiss(p.call_id)}>×</button>
            </span>
          </div>
        );
      })}
    </div>
  );
}
