// Teams: name, members and routing — strategy, supervisor, business-hours
// calendar, limits (unanswered minutes per channel, sticky wait, auto-away),
// the call queue (callqueue.tsx) — and which SLA policies apply to the team
// (POST/PATCH /api/v1/teams).
import { useState } from 'preact/hooks';
import { strings, type T } from '../i18n';
import { CallQueueFields, queueBadge, queueDoc, queueState, type CallQueue } from './callqueue';
import { EditorForm, ListScreen, useCreateThenPatch, useForm, useListScreen, useLoaded } from './crud';
import { c, Field, Group, IdChecks, ItemSelect, intOrNull, str, useFields } from './form';
import type { Lookups, Team, TeamRouting } from './types';

const s = strings({
  ru: {
    newTeam: 'Новая команда',
    editTeam: 'Команда {name}',
    members: 'Участники',
    strategy: 'Распределение',
    'st.round_robin': 'по кругу',
    'st.least_busy': 'наименее загруженному',
    'st.manual': 'вручную (очередь)',
    supervisor: 'Руководитель',
    nobody: 'нет',
    calendar: 'Рабочее время (календарь)',
    always: 'круглосуточно',
    unanswered: 'Передать другому, если нет ответа, минут',
    chat: 'чат',
    email: 'почта',
    call: 'звонок',
    neverHint: '0 или пусто — никогда',
    sticky: 'Сколько ждать своего оператора, минут',
    autoAway: 'Перевести в «Отошёл» после стольких неотвеченных подряд',
    sla: 'SLA-политики этой команды',
    slaAll: 'Политики без условия на команду действуют для всех команд.',
    noAgents: 'Операторов пока нет',
  },
  en: {
    newTeam: 'New team',
    editTeam: 'Team {name}',
    members: 'Members',
    strategy: 'Assignment',
    'st.round_robin': 'round robin',
    'st.least_busy': 'least busy',
    'st.manual': 'manual (queue)',
    supervisor: 'Supervisor',
    nobody: 'none',
    calendar: 'Business hours (calendar)',
    always: 'around the clock',
    unanswered: 'Reassign when unanswered, minutes',
    chat: 'chat',
    email: 'email',
    call: 'call',
    neverHint: '0 or empty — never',
    sticky: 'How long to wait for the customer’s own agent, minutes',
    autoAway: 'Set away after this many unanswered in a row',
    sla: 'SLA policies of this team',
    slaAll: 'Policies without a team condition apply to every team.',
    noAgents: 'No agents yet',
  },
});

const STRATEGIES = ['round_robin', 'least_busy', 'manual'] as const;
type SlaDoc = { id: number; name: string; conditions?: { team_id?: number | null } | null };
type Routing = TeamRouting & { call_queue?: CallQueue | null };
/* The keys of routing this form edits; any other key is saved as it was. */
const EDITED = ['strategy', 'supervisor_id', 'calendar_id', 'unanswered_minutes', 'sticky_wait_minutes', 'auto_away_after', 'call_queue'];

function TeamEditor(props: { t: T; team: Team | null; lookups: Lookups; onDone: (saved: boolean) => void }) {
  const { t, lookups } = props;
  const r0: Routing = props.team?.routing ?? {};
  const [f, setF, set] = useFields({
    name: props.team?.name ?? '',
    members: props.team?.member_ids ?? [],
    strategy: r0.strategy ?? 'round_robin',
    supervisor: str(r0.supervisor_id),
    calendar: str(r0.calendar_id),
    chat: str(r0.unanswered_minutes?.chat),
    email: str(r0.unanswered_minutes?.email),
    call: str(r0.unanswered_minutes?.call),
    sticky: str(r0.sticky_wait_minutes),
    autoAway: str(r0.auto_away_after),
  });
  const [queue, setQueue] = useState(() => queueState(r0.call_queue));
  const saver = useCreateThenPatch('/api/v1/teams', 'team', props.team?.id ?? null);
  const id = saver.id;
  const frm = useForm(t);
  const err = frm.err;
  const [policies] = useLoaded<SlaDoc>('/api/v1/sla-policies', 'sla_policies');
  /* The POST takes the name and members; the routing is PATCHed, whole:
   * the API replaces it, so what the form does not edit is sent back. */
  const send = () => {
    const routing: Record<string, unknown> = { ...r0 };
    for (const k of EDITED) delete routing[k];
    routing.strategy = f.strategy;
    if (f.supervisor) routing.supervisor_id = Number(f.supervisor);
    if (f.calendar) routing.calendar_id = Number(f.calendar);
    const un: Record<string, unknown> = {};
    for (const k of ['chat', 'email', 'call'] as const) if (f[k].trim()) un[k] = intOrNull(f[k]);
    if (Object.keys(un).length) routing.unanswered_minutes = un;
    if (f.sticky.trim()) routing.sticky_wait_minutes = intOrNull(f.sticky);
    if (f.autoAway.trim()) routing.auto_away_after = intOrNull(f.autoAway);
    const cq = queueDoc(queue, r0.call_queue);
    if (cq) routing.call_queue = cq;
    return saver.save({ name: f.name, member_ids: f.members }, { name: f.name, member_ids: f.members, routing });
  };
  const title = id !== null ? s(t, 'editTeam').replace('{name}', props.team?.name ?? f.name) : s(t, 'newTeam');
  const mine = (policies ?? []).filter((p) => id !== null && p.conditions?.team_id === id);
  return (
    <EditorForm t={t} form={frm} title={title} isNew={id === null} send={send} onDone={props.onDone}>
      <Field label={c(t, 'name')} path="name" err={err}>{(a) => <input {...a} value={f.name} onInput={set('name')} />}</Field>
      <Group legend={s(t, 'members')} path="member_ids" err={err} class="inline">
        <IdChecks items={lookups.agents} value={f.members} onChange={(members) => setF({ ...f, members })} empty={s(t, 'noAgents')} />
      </Group>
      <Field label={s(t, 'strategy')} path="routing.strategy" err={err}>
        {(a) => (
          <select {...a} name="strategy" value={f.strategy} onChange={set('strategy')}>
            {STRATEGIES.map((x) => <option key={x} value={x}>{s(t, `st.${x}`)}</option>)}
          </select>
        )}
      </Field>
      <Field label={s(t, 'supervisor')} path="routing.supervisor_id" err={err}>
        {(a) => <ItemSelect {...a} value={f.supervisor} onChange={set('supervisor')} blank={s(t, 'nobody')} items={lookups.agents.filter((x) => x.active)} />}
      </Field>
      <Field label={s(t, 'calendar')} path="routing.calendar_id" err={err}>
        {(a) => <ItemSelect {...a} value={f.calendar} onChange={set('calendar')} blank={s(t, 'always')} items={lookups.calendars} />}
      </Field>
      <Group legend={s(t, 'unanswered')} path="routing.unanswered_minutes" err={err} class="inline">
        {(['chat', 'email', 'call'] as const).map((k) => (
          <Field key={k} label={s(t, k)} path={`routing.unanswered_minutes.${k}`} err={err} class="small">
            {(a) => <input {...a} type="number" min="0" value={f[k]} onInput={set(k)} />}
          </Field>
        ))}
        <small class="hint">{s(t, 'neverHint')}</small>
      </Group>
      <Field label={s(t, 'sticky')} path="routing.sticky_wait_minutes" err={err}>
        {(a) => <input {...a} type="number" min="0" value={f.sticky} onInput={set('sticky')} />}
      </Field>
      <Field label={s(t, 'autoAway')} path="routing.auto_away_after" err={err} hint={s(t, 'neverHint')}>
        {(a) => <input {...a} type="number" min="0" max="100" value={f.autoAway} onInput={set('autoAway')} />}
      </Field>
      <CallQueueFields t={t} err={err} value={queue} onChange={setQueue} />
      {id !== null && (
        <div class="field">
          <span class="label">{s(t, 'sla')}</span>
          <p>{mine.length ? mine.map((p) => p.name).join(', ') : c(t, 'none')}</p>
          <small class="hint">{s(t, 'slaAll')}</small>
        </div>
      )}
    </EditorForm>
  );
}

export function Teams(props: { t: T; lookups: Lookups }) {
  const { t, lookups } = props;
  const screen = useListScreen<Team>(t, '/api/v1/teams', lookups.reload);
  return (
    <ListScreen t={t} screen={screen} items={lookups.teams} newLabel={s(t, 'newTeam')}
      editor={(x, onDone) => <TeamEditor t={t} lookups={lookups} team={x} onDone={onDone} />}
      row={(x) => {
        const queue = queueBadge(t, (x.routing as Routing).call_queue);
        return {
          data: { 'data-team': x.id },
          what: (
            <>
              <strong>{x.name}</strong> <span class="badge">{s(t, `st.${x.routing.strategy ?? 'round_robin'}`)}</span>
              {queue && <span class="badge call-queue">{queue}</span>}
              <span class="muted">{x.member_ids.map((m) => lookups.agents.find((a) => a.id === m)?.name ?? `#${m}`).join(', ')}</span>
            </>
          ),
        };
      }} />
  );
}
