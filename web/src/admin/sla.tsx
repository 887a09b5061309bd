// SLA policies: conditions (team, channel kind, VIP, tag), calendar,
// warning percentage and targets per priority, in the order they are
// matched (the first that matches applies).
import { useState } from 'preact/hooks';
import { strings, type T } from '../i18n';
import { EditorForm, ListScreen, putOrPost, useForm, useListScreen, useLoaded } from './crud';
import { c, Field, Group, ItemSelect, intOrNull, str, useFields, val } from './form';
import { PRIORITIES, type Lookups } from './types';

const s = strings({
  ru: {
    newPolicy: 'Новая политика',
    editPolicy: 'Политика «{name}»',
    conditions: 'Для каких обращений (пусто — для всех)',
    team: 'Команда',
    channel: 'Тип канала',
    'ch.chat': 'чат',
    'ch.email': 'почта',
    'ch.call': 'звонок',
    vip: 'VIP-клиенты',
    vipYes: 'только VIP',
    vipNo: 'все, кроме VIP',
    tag: 'Тег обращения',
    calendar: 'Считать время по календарю',
    always: 'круглосуточно',
    warn: 'Предупреждать, когда прошло, %',
    targets: 'Цели, минут (пусто — без цели)',
    first: 'первый ответ',
    next: 'следующий ответ',
    resolution: 'решение',
    'p.low': 'Низкий',
    'p.normal': 'Обычный',
    'p.high': 'Высокий',
    'p.urgent': 'Срочный',
    order: 'Порядок проверки',
    none: 'Политик пока нет.',
  },
  en: {
    newPolicy: 'New policy',
    editPolicy: 'Policy “{name}”',
    conditions: 'Which tickets (empty — all)',
    team: 'Team',
    channel: 'Channel kind',
    'ch.chat': 'chat',
    'ch.email': 'email',
    'ch.call': 'call',
    vip: 'VIP customers',
    vipYes: 'VIP only',
    vipNo: 'all but VIP',
    tag: 'Ticket tag',
    calendar: 'Count time on the calendar',
    always: 'around the clock',
    warn: 'Warn when this much has passed, %',
    targets: 'Targets, minutes (empty — none)',
    first: 'first response',
    next: 'next response',
    resolution: 'resolution',
    'p.low': 'Low',
    'p.normal': 'Normal',
    'p.high': 'High',
    'p.urgent': 'Urgent',
    order: 'Matching order',
    none: 'No policies yet.',
  },
});

const CLOCKS = [['first_response_minutes', 'first'], ['next_response_minutes', 'next'], ['resolution_minutes', 'resolution']] as const;
type Targets = Partial<Record<string, Partial<Record<string, number | null>>>>;
type Policy = {
  id: number;
  name: string;
  conditions?: { team_id?: number | null; channel?: string | null; vip?: boolean | null; tag?: string | null } | null;
  calendar_id?: number | null;
  warn_pct?: number | null;
  targets: Targets;
};

function PolicyEditor(props: { t: T; policy: Policy | null; lookups: Lookups; onDone: (saved: boolean) => void }) {
  const { t, lookups } = props;
  const p = props.policy;
  const [f, , set] = useFields({
    name: p?.name ?? '',
    team: str(p?.conditions?.team_id),
    channel: str(p?.conditions?.channel),
    vip: str(p?.conditions?.vip),
    tag: str(p?.conditions?.tag),
    calendar: str(p?.calendar_id),
    warn: str(p?.warn_pct),
  });
  const [targets, setTargets] = useState<Record<string, string>>(() => {
    const o: Record<string, string> = {};
    for (const pr of PRIORITIES) for (const [k] of CLOCKS) o[`${pr}.${k}`] = str(p?.targets?.[pr]?.[k]);
    return o;
  });
  const frm = useForm(t);
  const err = frm.err;
  const send = () => {
    const conditions: Record<string, unknown> = {};
    if (f.team) conditions.team_id = Number(f.team);
    if (f.channel) conditions.channel = f.channel;
    if (f.vip) conditions.vip = f.vip === 'true';
    if (f.tag.trim()) conditions.tag = f.tag.trim();
    const tg: Record<string, Record<string, unknown>> = {};
    for (const pr of PRIORITIES)
      for (const [k] of CLOCKS) {
        const v = targets[`${pr}.${k}`];
        if (v.trim()) (tg[pr] ??= {})[k] = intOrNull(v);
      }
    const doc: Record<string, unknown> = { name: f.name, targets: tg };
    if (Object.keys(conditions).length) doc.conditions = conditions;
    if (f.calendar) doc.calendar_id = Number(f.calendar);
    if (f.warn.trim()) doc.warn_pct = intOrNull(f.warn);
    return putOrPost('/api/v1/sla-policies', p?.id, doc);
  };
  const title = p ? s(t, 'editPolicy').replace('{name}', p.name) : s(t, 'newPolicy');
  return (
    <EditorForm t={t} form={frm} title={title} isNew={!p} send={send} onDone={props.onDone}>
      <Field label={c(t, 'name')} path="name" err={err}>{(a) => <input {...a} value={f.name} onInput={set('name')} />}</Field>
      <Group legend={s(t, 'conditions')} path="conditions" err={err} class="inline">
        <Field label={s(t, 'team')} path="conditions.team_id" err={err}>
          {(a) => <ItemSelect {...a} value={f.team} onChange={set('team')} blank={c(t, 'any')} items={lookups.teams} />}
        </Field>
        <Field label={s(t, 'channel')} path="conditions.channel" err={err}>
          {(a) => (
            <select {...a} value={f.channel} onChange={set('channel')}>
              <option value="">{c(t, 'any')}</option>
              {['chat', 'email', 'call'].map((x) => <option key={x} value={x}>{s(t, `ch.${x}` as 'ch.chat')}</option>)}
            </select>
          )}
        </Field>
        <Field label={s(t, 'vip')} path="conditions.vip" err={err}>
          {(a) => (
            <select {...a} value={f.vip} onChange={set('vip')}>
              <option value="">{c(t, 'any')}</option>
              <option value="true">{s(t, 'vipYes')}</option>
              <option value="false">{s(t, 'vipNo')}</option>
            </select>
          )}
        </Field>
        <Field label={s(t, 'tag')} path="conditions.tag" err={err}>{(a) => <input {...a} value={f.tag} onInput={set('tag')} />}</Field>
      </Group>
      <Field label={s(t, 'calendar')} path="calendar_id" err={err}>
        {(a) => <ItemSelect {...a} value={f.calendar} onChange={set('calendar')} blank={s(t, 'always')} items={lookups.calendars} />}
      </Field>
      <Field label={s(t, 'warn')} path="warn_pct" err={err}>
        {(a) => <input {...a} type="number" min="0" max="99" value={f.warn} onInput={set('warn')} />}
      </Field>
      <Group legend={s(t, 'targets')} path="targets" err={err} class="targets">
        {PRIORITIES.map((pr) => (
          <div class="target-row" key={pr} data-path={`targets.${pr}`}>
            <strong>{s(t, `p.${pr}`)}</strong>
            {CLOCKS.map(([k, label]) => (
              <Field key={k} label={<><span class="sr">{s(t, `p.${pr}`)}: </span>{s(t, label)}</>} path={`targets.${pr}.${k}`} err={err} class="small">
                {(a) => (
                  <input {...a} type="number" min="0" value={targets[`${pr}.${k}`]}
                    onInput={(e) => setTargets({ ...targets, [`${pr}.${k}`]: val(e) })} />
                )}
              </Field>
            ))}
          </div>
        ))}
      </Group>
    </EditorForm>
  );
}

export function SlaPolicies(props: { t: T; lookups: Lookups }) {
  const { t } = props;
  const [items, load] = useLoaded<Policy>('/api/v1/sla-policies', 'sla_policies');
  const screen = useListScreen<Policy>(t, '/api/v1/sla-policies', load);
  return (
    <ListScreen t={t} screen={screen} items={items} newLabel={s(t, 'newPolicy')} empty={s(t, 'none')} order={s(t, 'order')} deletable
      editor={(x, onDone) => <PolicyEditor t={t} lookups={props.lookups} policy={x} onDone={onDone} />}
      row={(x) => ({
        what: (
          <>
            <strong>{x.name}</strong>
            <span class="muted">
              {PRIORITIES.filter((pr) => x.targets?.[pr]).map((pr) => s(t, `p.${pr}`)).join(', ')}
            </span>
          </>
        ),
      })} />
  );
}
