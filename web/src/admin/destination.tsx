// Where a call goes (the API's IvrDestination), as the phone number, IVR
// menu and forwarding scheme screens edit it: the action, then the picker
// it needs (a team, an agent, a menu or a scheme) and, for the actions
// that end the IVR, the name of a
// prompt played first. Each control sits at its JSON path ("entry.team_id",
// "options[1].menu_id") so the API's 422 lands beside it.
import type { ComponentChildren } from 'preact';
import { strings, type T } from '../i18n';
import { Field, Group, ItemSelect, val, type FormError } from './form';
import type { AgentFull, Team } from './types';

export const ds = strings({
  ru: {
    action: 'Действие',
    team: 'Команда',
    agent: 'Оператор',
    menu: 'Меню',
    scheme: 'Схема переадресации',
    prompt: 'Запись перед этим (имя)',
    choose: 'выберите…',
    'a.queue': 'Очередь команды',
    'a.agent': 'Позвонить оператору',
    'a.voicemail': 'Голосовая почта команды',
    'a.hangup': 'Завершить звонок',
    'a.menu': 'Голосовое меню',
    'a.scheme': 'Схема переадресации',
    'a.submenu': 'Подменю',
    'a.repeat': 'Повторить меню',
    'a.back': 'Назад, в меню выше',
    'a.operator': 'Оператору (как «0»)',
    'short.voicemail': 'голосовая почта: {x}',
    'short.hangup': 'завершить звонок',
    'short.repeat': 'повтор',
    'short.back': 'назад',
    'short.operator': 'оператору',
  },
  en: {
    action: 'Action',
    team: 'Team',
    agent: 'Agent',
    menu: 'Menu',
    scheme: 'Forwarding scheme',
    prompt: 'Prompt played first (name)',
    choose: 'choose…',
    'a.queue': 'Team’s queue',
    'a.agent': 'Ring an agent',
    'a.voicemail': 'Team’s voicemail',
    'a.hangup': 'Hang up',
    'a.menu': 'IVR menu',
    'a.scheme': 'Forwarding scheme',
    'a.submenu': 'Submenu',
    'a.repeat': 'Repeat the menu',
    'a.back': 'Back to the menu above',
    'a.operator': 'To the operator (as “0”)',
    'short.voicemail': 'voicemail: {x}',
    'short.hangup': 'hang up',
    'short.repeat': 'repeat',
    'short.back': 'back',
    'short.operator': 'operator',
  },
});

export type Action = 'queue' | 'agent' | 'voicemail' | 'hangup' | 'menu' | 'scheme' | 'submenu' | 'repeat' | 'back' | 'operator';

/* What each place allows (src/engine/voice_config.c): a scheme answers a
 * number only, and ends in anything but a scheme. */
export const NUMBER_ACTIONS: Action[] = ['menu', 'scheme', 'queue', 'agent', 'voicemail', 'hangup'];
export const SCHEME_END_ACTIONS: Action[] = ['menu', 'queue', 'agent', 'voicemail', 'hangup'];
export const OPTION_ACTIONS: Action[] = ['queue', 'agent', 'voicemail', 'hangup', 'submenu', 'repeat', 'back', 'operator'];
export const FALLBACK_ACTIONS: Action[] = ['queue', 'agent', 'voicemail', 'hangup', 'operator'];
export const OPERATOR_ACTIONS: Action[] = ['queue', 'agent', 'voicemail', 'hangup'];

export type Dest = {
  action: string;
  team_id?: number;
  agent_id?: number;
  menu_id?: number;
  scheme_id?: number;
  prompt?: string;
};

export type MenuDoc = {
  id: number;
  name: string;
  prompt: string;
  options?: (Dest & { digit: string })[];
  extension_dialing?: boolean;
  timeout_seconds?: number;
  interdigit_seconds?: number;
  invalid_retries?: number;
  invalid_prompt?: string;
  fallback?: Dest;
  operator?: Dest;
};

export type NumberDoc = {
  id: number;
  name: string;
  number: string;
  language?: 'ru' | 'en';
  entry: Dest;
  calendar_id?: number;
  after_hours?: Dest;
  holidays?: Dest;
  operator?: Dest;
  record_calls?: boolean | null;
  rating?: boolean | null; // the caller rates every call an agent answered (or the queue asks)
};

export type TargetKind = 'agent' | 'team' | 'number' | 'sip_uri';
export type Target = Partial<Record<TargetKind, number | string | null>>;

export type SchemeDoc = {
  id: number;
  name: string;
  steps: { targets: Target[]; mode: 'together' | 'sequential'; seconds: number }[];
  final: Dest;
  backup?: Dest;
};

/* A destination as the form holds it: every picker's value as text. */
export type DestState = { action: string; team: string; agent: string; menu: string; scheme: string; prompt: string };

type Picker = 'team' | 'agent' | 'menu' | 'scheme';
const idKey: Partial<Record<string, Picker>> = {
  queue: 'team',
  voicemail: 'team',
  agent: 'agent',
  menu: 'menu',
  submenu: 'menu',
  scheme: 'scheme',
};
const ENDS = ['queue', 'agent', 'voicemail', 'hangup', 'scheme'];

export function destState(d: Dest | null | undefined): DestState {
  const s = (v: unknown) => (v === undefined || v === null ? '' : String(v));
  return {
    action: d?.action ?? '', team: s(d?.team_id), agent: s(d?.agent_id), menu: s(d?.menu_id), scheme: s(d?.scheme_id),
    prompt: d?.prompt ?? '',
  };
}

/* The document for a destination: only the keys its action takes (an
 * empty picker is left out, for the API to say it is required); undefined
 * when no action is chosen. */
export function destDoc(s: DestState): Dest | undefined {
  if (!s.action) return undefined;
  const d: Dest = { action: s.action };
  const k = idKey[s.action];
  if (k && s[k] !== '') d[`${k}_id`] = /^\d+$/.test(s[k]) ? Number(s[k]) : (s[k] as unknown as number);
  if (ENDS.includes(s.action) && s.prompt.trim() !== '') d.prompt = s.prompt.trim();
  return d;
}

export type Pickers = {
  teams: Team[];
  agents: AgentFull[];
  menus: { id: number; name: string }[];
  schemes?: { id: number; name: string }[];
};

/* A destination in a few words, for the lists. */
export function destText(t: T, d: Dest | null | undefined, p: Pickers): string {
  if (!d) return '';
  const name = (xs: { id: number; name: string }[], id?: number) => xs.find((x) => x.id === id)?.name ?? `#${id ?? '?'}`;
  switch (d.action) {
    case 'queue':
      return name(p.teams, d.team_id);
    case 'voicemail':
      return ds(t, 'short.voicemail').replace('{x}', name(p.teams, d.team_id));
    case 'agent':
      return name(p.agents, d.agent_id);
    case 'menu':
    case 'submenu':
      return name(p.menus, d.menu_id);
    case 'scheme':
      return `${ds(t, 'a.scheme')}: ${name(p.schemes ?? [], d.scheme_id)}`;
    case 'hangup':
    case 'repeat':
    case 'back':
    case 'operator':
      return ds(t, `short.${d.action}`);
    default:
      return d.action;
  }
}

/* The controls of one destination at `path`: `prefix` is read before each
 * label ("Option 2: Team") so every control has a name of its own; `blank`
 * is the choice of no action (for the optional ones). */
export function DestFields(props: {
  t: T;
  path: string;
  prefix: string;
  err: FormError;
  value: DestState;
  onChange: (d: DestState) => void;
  actions: Action[];
  pickers: Pickers;
  blank: string;
}) {
  const { t, path, err, value, pickers } = props;
  const label = (k: 'action' | Picker | 'prompt') => (
    <><span class="sr">{props.prefix}: </span>{ds(t, k)}</>
  );
  const set = (k: keyof DestState) => (e: Event) => props.onChange({ ...value, [k]: val(e) });
  const k = idKey[value.action];
  return (
    <>
      <Field label={label('action')} path={`${path}.action`} err={err} class="grow">
        {(a) => (
          <select {...a} value={value.action} onChange={set('action')}>
            <option value="">{props.blank}</option>
            {props.actions.map((x) => <option key={x} value={x}>{ds(t, `a.${x}`)}</option>)}
          </select>
        )}
      </Field>
      {k === 'team' && (
        <Field label={label('team')} path={`${path}.team_id`} err={err} class="grow">
          {(a) => <ItemSelect {...a} value={value.team} onChange={set('team')} blank={ds(t, 'choose')} items={pickers.teams} />}
        </Field>
      )}
      {k === 'agent' && (
        <Field label={label('agent')} path={`${path}.agent_id`} err={err} class="grow">
          {(a) => <ItemSelect {...a} value={value.agent} onChange={set('agent')} blank={ds(t, 'choose')} items={pickers.agents.filter((x) => x.active)} />}
        </Field>
      )}
      {k === 'menu' && (
        <Field label={label('menu')} path={`${path}.menu_id`} err={err} class="grow">
          {(a) => <ItemSelect {...a} value={value.menu} onChange={set('menu')} blank={ds(t, 'choose')} items={pickers.menus} />}
        </Field>
      )}
      {k === 'scheme' && (
        <Field label={label('scheme')} path={`${path}.scheme_id`} err={err} class="grow">
          {(a) => <ItemSelect {...a} value={value.scheme} onChange={set('scheme')} blank={ds(t, 'choose')} items={pickers.schemes ?? []} />}
        </Field>
      )}
      {ENDS.includes(value.action) && (
        <Field label={label('prompt')} path={`${path}.prompt`} err={err} class="grow">
          {(a) => <input {...a} value={value.prompt} onInput={set('prompt')} placeholder="closed" autocomplete="off" spellcheck={false} />}
        </Field>
      )}
    </>
  );
}

/* A destination of its own under a legend (a number's entry, a menu's
 * fallback): the legend names its controls too. */
export function DestGroup(props: {
  t: T;
  legend: string;
  path: string;
  err: FormError;
  value: DestState;
  onChange: (d: DestState) => void;
  actions: Action[];
  pickers: Pickers;
  blank: string;
  hint?: string;
  children?: ComponentChildren;
}) {
  const { legend, hint, children, ...rest } = props;
  return (
    <Group legend={legend} path={props.path} err={props.err} class="inline dest">
      <DestFields {...rest} prefix={legend} />
      {hint && <small class="hint">{hint}</small>}
      {children}
    </Group>
  );
}
