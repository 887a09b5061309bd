// Agents: create, role, team membership, capacity, skills and languages,
// deactivate (POST/PATCH /api/v1/agents).
import type { Agent } from '../api';
import { strings, type T } from '../i18n';
import { EditorForm, ListScreen, useCreateThenPatch, useForm, useListScreen } from './crud';
import { c, CheckField, Field, Group, IdChecks, numOrNull, splitList, useFields } from './form';
import type { AgentFull, Lookups } from './types';

const s = strings({
  ru: {
    newAgent: 'Новый оператор',
    editAgent: 'Оператор {name}',
    name: 'Имя',
    email: 'Эл. почта',
    role: 'Роль',
    'role.agent': 'оператор',
    'role.supervisor': 'руководитель',
    'role.admin': 'администратор',
    language: 'Язык интерфейса',
    password: 'Пароль (не короче 8 символов)',
    newPassword: 'Новый пароль (оставьте пустым, чтобы не менять)',
    teams: 'Команды',
    capacity: 'Ёмкость (1 = один оператор)',
    skills: 'Навыки',
    languages: 'Языки общения',
    active: 'Активен (снимите, чтобы отключить: сеансы закончатся)',
    inactive: 'отключён',
    noTeams: 'Команд пока нет',
  },
  en: {
    newAgent: 'New agent',
    editAgent: 'Agent {name}',
    name: 'Name',
    email: 'Email',
    role: 'Role',
    'role.agent': 'agent',
    'role.supervisor': 'supervisor',
    'role.admin': 'admin',
    language: 'Interface language',
    password: 'Password (at least 8 characters)',
    newPassword: 'New password (leave empty to keep)',
    teams: 'Teams',
    capacity: 'Capacity (1 = one agent)',
    skills: 'Skills',
    languages: 'Languages spoken',
    active: 'Active (clear to deactivate: sessions end)',
    inactive: 'deactivated',
    noTeams: 'No teams yet',
  },
});

const ROLES = ['agent', 'supervisor', 'admin'] as const;

function AgentEditor(props: { t: T; agent: AgentFull | null; lookups: Lookups; onDone: (saved: boolean) => void }) {
  const { t, lookups } = props;
  const a0 = props.agent;
  const [f, setF, set] = useFields({
    name: a0?.name ?? '',
    email: a0?.email ?? '',
    role: a0?.role ?? 'agent',
    language: a0?.language ?? t.lang,
    password: '',
    active: a0?.active ?? true,
    teams: a0?.team_ids ?? [],
    capacity: a0?.routing.capacity ? String(a0.routing.capacity) : '',
    skills: (a0?.routing.skills ?? []).join(', '),
    languages: (a0?.routing.languages ?? []).join(', '),
  });
  const saver = useCreateThenPatch('/api/v1/agents', 'agent', a0?.id ?? null);
  const id = saver.id;
  const frm = useForm(t);
  const err = frm.err;
  const routing = () => {
    const r: Record<string, unknown> = {};
    if (f.capacity.trim()) r.capacity = numOrNull(f.capacity);
    if (f.skills.trim()) r.skills = splitList(f.skills);
    if (f.languages.trim()) r.languages = splitList(f.languages);
    return r;
  };
  /* The POST takes what an agent needs to sign in; the rest is PATCHed. */
  const send = () => {
    const body: Record<string, unknown> = { routing: routing(), team_ids: f.teams, role: f.role, language: f.language, active: f.active };
    if (id !== null) body.name = f.name;
    if (id !== null && f.password) body.password = f.password;
    const create = { name: f.name, email: f.email, role: f.role, language: f.language, password: f.password, team_ids: f.teams };
    return saver.save(create, body);
  };
  const title = id !== null ? s(t, 'editAgent').replace('{name}', a0?.name ?? f.name) : s(t, 'newAgent');
  return (
    <EditorForm t={t} form={frm} title={title} isNew={id === null} send={send} onDone={props.onDone}>
      <Field label={s(t, 'name')} path="name" err={err}>{(a) => <input {...a} value={f.name} onInput={set('name')} />}</Field>
      <Field label={s(t, 'email')} path="email" err={err}>
        {(a) => <input {...a} type="email" value={f.email} onInput={set('email')} disabled={id !== null} />}
      </Field>
      <Field label={s(t, 'role')} path="role" err={err}>
        {(a) => (
          <select {...a} value={f.role} onChange={set('role')}>
            {ROLES.map((x) => <option key={x} value={x}>{s(t, `role.${x}`)}</option>)}
          </select>
        )}
      </Field>
      <Field label={s(t, 'language')} path="language" err={err}>
        {(a) => (
          <select {...a} value={f.language} onChange={set('language')}>
            <option value="ru">Русский</option>
            <option value="en">English</option>
          </select>
        )}
      </Field>
      <Field label={id === null ? s(t, 'password') : s(t, 'newPassword')} path="password" err={err}>
        {(a) => <input {...a} type="password" autocomplete="new-password" value={f.password} onInput={set('password')} />}
      </Field>
      <Group legend={s(t, 'teams')} path="team_ids" err={err} class="inline">
        <IdChecks items={lookups.teams} value={f.teams} onChange={(teams) => setF({ ...f, teams })} empty={s(t, 'noTeams')} />
      </Group>
      <Field label={s(t, 'capacity')} path="routing.capacity" err={err}>
        {(a) => <input {...a} inputMode="decimal" value={f.capacity} onInput={set('capacity')} />}
      </Field>
      <Field label={s(t, 'skills')} path="routing.skills" err={err} hint={c(t, 'commaHint')}>
        {(a) => <input {...a} value={f.skills} onInput={set('skills')} />}
      </Field>
      <Field label={s(t, 'languages')} path="routing.languages" err={err} hint={`${c(t, 'commaHint')}: ru, en, kk`}>
        {(a) => <input {...a} value={f.languages} onInput={set('languages')} />}
      </Field>
      <CheckField path="active" label={s(t, 'active')} checked={f.active} onChange={(active) => setF({ ...f, active })} />
    </EditorForm>
  );
}

export function Agents(props: { t: T; me: Agent; lookups: Lookups }) {
  const { t, lookups } = props;
  const screen = useListScreen<AgentFull>(t, '/api/v1/agents', lookups.reload);
  const teamName = (id: number) => lookups.teams.find((x) => x.id === id)?.name ?? `#${id}`;
  return (
    <ListScreen t={t} screen={screen} items={lookups.agents} newLabel={s(t, 'newAgent')}
      editor={(x, onDone) => <AgentEditor t={t} lookups={lookups} agent={x} onDone={onDone} />}
      row={(x) => ({
        class: `item${x.active ? '' : ' off'}`,
        what: (
          <>
            <strong>{x.name}</strong> <span class="badge">{s(t, `role.${x.role}`)}</span>
            {!x.active && <span class="badge">{s(t, 'inactive')}</span>}
            <span class="muted">{x.email}{x.team_ids.length ? ' · ' + x.team_ids.map(teamName).join(', ') : ''}</span>
          </>
        ),
      })} />
  );
}
