// Automation rules: the list in the order they run (reorder, edit,
// delete) and a form builder for one rule: name, triggers, conditions in
// all/any groups (the operators follow the field), actions with the
// parameters each type needs, once per ticket, enabled. Never raw JSON.
import { useEffect, useState } from 'preact/hooks';
import { strings, type T } from '../i18n';
import { EditorForm, ListScreen, putOrPost, useForm, useListScreen, useLoaded } from './crud';
import { c, Field, Group, ItemSelect, checked, intOrNull, splitList, str, val, type FormError } from './form';
import { PRIORITIES, STATUSES, type Lookups } from './types';

const s = strings({
  ru: {
    newRule: 'Новое правило',
    editRule: 'Правило «{name}»',
    createRule: 'Новое правило',
    enabled: 'Включено',
    disabled: 'выключено',
    once: 'Не чаще одного раза на обращение',
    triggers: 'Когда срабатывает',
    minutes: 'Через сколько минут (для событий «… N минут»)',
    conditions: 'Условия',
    all: 'все условия',
    any: 'любое из условий',
    match: 'Должны выполняться',
    addCondition: 'Добавить условие',
    addGroup: 'Добавить группу',
    removeCondition: 'Убрать условие',
    removeGroup: 'Убрать группу',
    noConditions: 'Без условий правило срабатывает всегда.',
    condition: 'Условие {n}',
    group: 'Группа {n}',
    field: 'Поле',
    op: 'Оператор',
    value: 'Значение',
    attrKey: 'Имя атрибута',
    calendar: 'Календарь',
    actions: 'Действия',
    action: 'Действие {n}',
    type: 'Тип',
    addAction: 'Добавить действие',
    removeAction: 'Убрать действие',
    agent: 'Оператор',
    team: 'Команда',
    template: 'Шаблон',
    tag: 'Тег',
    note: 'Текст заметки',
    target: 'Кого',
    title: 'Название задачи',
    due: 'Срок, минут от срабатывания',
    assignee: 'Исполнитель',
    ticketAssignee: 'ответственный за обращение',
    url: 'URL вебхука',
    whom: 'Кому',
    order: 'Порядок',
    noRules: 'Правил пока нет.',
    choose: 'выберите…',
    'f.text': 'Текст сообщения',
    'f.subject': 'Тема',
    'f.channel': 'Тип канала',
    'f.language': 'Язык',
    'f.status': 'Статус',
    'f.priority': 'Приоритет',
    'f.team': 'Команда',
    'f.assignee': 'Ответственный',
    'f.contact.vip': 'VIP-клиент',
    'f.contact.tag': 'Тег клиента',
    'f.ticket.tag': 'Тег обращения',
    'f.contact.attributes': 'Атрибут клиента',
    'f.ticket.age_minutes': 'Возраст обращения, минут',
    'f.business_hours': 'Рабочее время',
    'o.contains': 'содержит',
    'o.not_contains': 'не содержит',
    'o.matches': 'соответствует выражению',
    'o.eq': 'равно',
    'o.ne': 'не равно',
    'o.in': 'одно из',
    'o.not_in': 'ни одно из',
    'o.is_set': 'задано',
    'o.is_not_set': 'не задано',
    'o.is': 'равно',
    'o.has': 'есть любой из',
    'o.not_has': 'нет ни одного из',
    'o.gt': 'больше',
    'o.gte': 'не меньше',
    'o.lt': 'меньше',
    'o.lte': 'не больше',
    'e.ticket.created': 'Создано обращение',
    'e.message.customer': 'Сообщение клиента',
    'e.message.agent': 'Ответ оператора',
    'e.status.changed': 'Изменён статус',
    'e.priority.changed': 'Изменён приоритет',
    'e.assignment.changed': 'Изменён ответственный',
    'e.sla.warning': 'SLA: скоро срок',
    'e.sla.breached': 'SLA: срок нарушен',
    'e.time.no_customer_reply': 'Клиент молчит N минут',
    'e.time.no_agent_reply': 'Нет ответа оператора N минут',
    'e.time.idle': 'Без движения N минут',
    'e.task.overdue': 'Задача просрочена',
    'a.set_priority': 'Установить приоритет',
    'a.set_status': 'Установить статус',
    'a.assign_team': 'Передать команде',
    'a.assign_agent': 'Назначить оператора',
    'a.add_tag': 'Добавить тег',
    'a.remove_tag': 'Убрать тег',
    'a.send_template': 'Отправить шаблон',
    'a.add_note': 'Добавить заметку',
    'a.notify': 'Уведомить',
    'a.create_task': 'Создать задачу',
    'a.webhook': 'Вызвать вебхук',
    'a.stop': 'Остановить обработку правил',
    'm.agent': 'выбранного оператора',
    'm.contact_owner': 'владельца клиента',
    'm.last_responder': 'последнего ответившего',
    'n.assignee': 'ответственного',
    'n.team': 'команду',
    'n.supervisor': 'руководителя команды',
    'n.agent': 'выбранного оператора',
    'p.low': 'низкий',
    'p.normal': 'обычный',
    'p.high': 'высокий',
    'p.urgent': 'срочный',
    's.new': 'новое',
    's.open': 'в работе',
    's.pending': 'ждёт клиента',
    's.resolved': 'решено',
    's.closed': 'закрыто',
  },
  en: {
    newRule: 'New rule',
    editRule: 'Rule “{name}”',
    createRule: 'New rule',
    enabled: 'Enabled',
    disabled: 'disabled',
    once: 'At most once per ticket',
    triggers: 'Runs when',
    minutes: 'After how many minutes (for the “… N minutes” events)',
    conditions: 'Conditions',
    all: 'all conditions',
    any: 'any condition',
    match: 'Must hold',
    addCondition: 'Add condition',
    addGroup: 'Add group',
    removeCondition: 'Remove condition',
    removeGroup: 'Remove group',
    noConditions: 'Without conditions the rule always matches.',
    condition: 'Condition {n}',
    group: 'Group {n}',
    field: 'Field',
    op: 'Operator',
    value: 'Value',
    attrKey: 'Attribute name',
    calendar: 'Calendar',
    actions: 'Actions',
    action: 'Action {n}',
    type: 'Type',
    addAction: 'Add action',
    removeAction: 'Remove action',
    agent: 'Agent',
    team: 'Team',
    template: 'Template',
    tag: 'Tag',
    note: 'Note text',
    target: 'Whom',
    title: 'Task title',
    due: 'Due, minutes after the rule ran',
    assignee: 'Owner',
    ticketAssignee: 'the ticket’s assignee',
    url: 'Webhook URL',
    whom: 'Whom',
    order: 'Order',
    noRules: 'No rules yet.',
    choose: 'choose…',
    'f.text': 'Message text',
    'f.subject': 'Subject',
    'f.channel': 'Channel type',
    'f.language': 'Language',
    'f.status': 'Status',
    'f.priority': 'Priority',
    'f.team': 'Team',
    'f.assignee': 'Assignee',
    'f.contact.vip': 'VIP customer',
    'f.contact.tag': 'Customer tag',
    'f.ticket.tag': 'Ticket tag',
    'f.contact.attributes': 'Customer attribute',
    'f.ticket.age_minutes': 'Ticket age, minutes',
    'f.business_hours': 'Business hours',
    'o.contains': 'contains',
    'o.not_contains': 'does not contain',
    'o.matches': 'matches the expression',
    'o.eq': 'is',
    'o.ne': 'is not',
    'o.in': 'is one of',
    'o.not_in': 'is none of',
    'o.is_set': 'is set',
    'o.is_not_set': 'is not set',
    'o.is': 'is',
    'o.has': 'has any of',
    'o.not_has': 'has none of',
    'o.gt': 'more than',
    'o.gte': 'at least',
    'o.lt': 'less than',
    'o.lte': 'at most',
    'e.ticket.created': 'Ticket created',
    'e.message.customer': 'Customer message',
    'e.message.agent': 'Agent reply',
    'e.status.changed': 'Status changed',
    'e.priority.changed': 'Priority changed',
    'e.assignment.changed': 'Assignee changed',
    'e.sla.warning': 'SLA: due soon',
    'e.sla.breached': 'SLA: breached',
    'e.time.no_customer_reply': 'Customer silent for N minutes',
    'e.time.no_agent_reply': 'No agent reply for N minutes',
    'e.time.idle': 'Idle for N minutes',
    'e.task.overdue': 'Task overdue',
    'a.set_priority': 'Set priority',
    'a.set_status': 'Set status',
    'a.assign_team': 'Assign to team',
    'a.assign_agent': 'Assign to agent',
    'a.add_tag': 'Add tag',
    'a.remove_tag': 'Remove tag',
    'a.send_template': 'Send template',
    'a.add_note': 'Add note',
    'a.notify': 'Notify',
    'a.create_task': 'Create task',
    'a.webhook': 'Call webhook',
    'a.stop': 'Stop processing rules',
    'm.agent': 'a chosen agent',
    'm.contact_owner': 'the customer’s owner',
    'm.last_responder': 'the last responder',
    'n.assignee': 'the assignee',
    'n.team': 'the team',
    'n.supervisor': 'the team’s supervisor',
    'n.agent': 'a chosen agent',
    'p.low': 'low',
    'p.normal': 'normal',
    'p.high': 'high',
    'p.urgent': 'urgent',
    's.new': 'new',
    's.open': 'open',
    's.pending': 'pending',
    's.resolved': 'resolved',
    's.closed': 'closed',
  },
});
type K = Parameters<typeof s>[1];
const tr = (t: T, k: string) => s(t, k as K) ?? k;

export const TRIGGERS = [
  'ticket.created', 'message.customer', 'message.agent', 'status.changed', 'priority.changed', 'assignment.changed',
  'sla.warning', 'sla.breached', 'time.no_customer_reply', 'time.no_agent_reply', 'time.idle', 'task.overdue',
];
const TIMED = ['time.no_customer_reply', 'time.no_agent_reply', 'time.idle'];

/* What each condition field takes: its operators and the kind of value. */
type ValueKind = 'phrases' | 'names' | 'status' | 'priority' | 'team' | 'agent' | 'bool' | 'number' | 'calendar' | 'strings';
const FIELDS: Record<string, { ops: string[]; kind: ValueKind }> = {
  text: { ops: ['contains', 'not_contains', 'matches'], kind: 'phrases' },
  subject: { ops: ['contains', 'not_contains', 'matches'], kind: 'phrases' },
  channel: { ops: ['in', 'not_in', 'eq', 'ne'], kind: 'names' },
  language: { ops: ['in', 'not_in', 'eq', 'ne', 'is_set', 'is_not_set'], kind: 'names' },
  status: { ops: ['in', 'not_in'], kind: 'status' },
  priority: { ops: ['in', 'not_in'], kind: 'priority' },
  team: { ops: ['in', 'not_in', 'is_set', 'is_not_set'], kind: 'team' },
  assignee: { ops: ['in', 'not_in', 'is_set', 'is_not_set'], kind: 'agent' },
  'contact.vip': { ops: ['is'], kind: 'bool' },
  'contact.tag': { ops: ['has', 'not_has'], kind: 'names' },
  'ticket.tag': { ops: ['has', 'not_has'], kind: 'names' },
  'contact.attributes': { ops: ['eq', 'ne', 'in', 'not_in', 'contains', 'is_set', 'is_not_set'], kind: 'strings' },
  'ticket.age_minutes': { ops: ['gt', 'gte', 'lt', 'lte'], kind: 'number' },
  business_hours: { ops: ['is'], kind: 'calendar' },
};
/* eq/ne mean in/not_in for lists: a stored eq shows as in. */
const SAME_AS: Record<string, string> = { eq: 'in', ne: 'not_in' };

export const ACTIONS = [
  'set_priority', 'set_status', 'assign_team', 'assign_agent', 'add_tag', 'remove_tag', 'send_template', 'add_note',
  'notify', 'create_task', 'webhook', 'stop',
];

let keys = 0;
type Leaf = { k: number; kind: 'leaf'; field: string; key: string; op: string; value: string; list: string[]; flag: boolean; calendar: string };
type Grp = { k: number; kind: 'group'; mode: 'all' | 'any'; items: Node[] };
type Node = Leaf | Grp;
type Act = { k: number; type: string; value: string; id: string; target: string; title: string; due: string; assignee: string; url: string };
type Model = { id?: number; name: string; enabled: boolean; on: string[]; once: boolean; minutes: string; when: Grp; actions: Act[] };
export type RuleDoc = Record<string, any> & { id: number; name: string };

function newLeaf(): Leaf {
  return { k: ++keys, kind: 'leaf', field: 'text', key: '', op: 'contains', value: '', list: [], flag: true, calendar: '' };
}
function newAct(): Act {
  return { k: ++keys, type: 'set_priority', value: 'urgent', id: '', target: 'assignee', title: '', due: '60', assignee: '', url: '' };
}

function leafFrom(j: any): Leaf {
  const l = newLeaf();
  const f = str(j.field);
  if (f.startsWith('contact.attributes.')) {
    l.field = 'contact.attributes';
    l.key = f.slice(19);
  } else l.field = f;
  const spec = FIELDS[l.field];
  l.op = str(j.op);
  if (spec && ['status', 'priority', 'team', 'agent'].includes(spec.kind)) l.op = SAME_AS[l.op] ?? l.op;
  const v = j.value;
  const arr = Array.isArray(v) ? v : v === undefined ? [] : [v];
  l.list = arr.map(str);
  l.value = arr.map(str).join(', ');
  if (l.op === 'matches' || spec?.kind === 'number') l.value = str(v);
  if (typeof v === 'boolean') l.flag = v;
  l.calendar = str(j.calendar);
  return l;
}

function nodeFrom(j: any): Node {
  if (j && Array.isArray(j.all)) return { k: ++keys, kind: 'group', mode: 'all', items: j.all.map(nodeFrom) };
  if (j && Array.isArray(j.any)) return { k: ++keys, kind: 'group', mode: 'any', items: j.any.map(nodeFrom) };
  return leafFrom(j ?? {});
}

function modelFrom(doc: RuleDoc | null): Model {
  if (!doc) return { name: '', enabled: true, on: ['ticket.created'], once: false, minutes: '', when: { k: ++keys, kind: 'group', mode: 'all', items: [] }, actions: [newAct()] };
  let when: Grp = { k: ++keys, kind: 'group', mode: 'all', items: [] };
  if (doc.when) {
    const n = nodeFrom(doc.when);
    when = n.kind === 'group' ? n : { k: ++keys, kind: 'group', mode: 'all', items: [n] };
  }
  const actions = (doc.actions ?? []).map((a: any): Act => {
    const x = newAct();
    x.type = str(a.type);
    x.value = str(a.value);
    x.id = str(a.id);
    x.url = str(a.url);
    x.title = str(a.title);
    x.due = str(a.due_minutes);
    x.assignee = str(a.assignee);
    if (x.type === 'assign_agent') x.target = a.id !== undefined ? 'agent' : x.value;
    if (x.type === 'notify') x.target = a.id !== undefined ? 'agent' : str(a.target);
    return x;
  });
  return {
    id: doc.id,
    name: str(doc.name),
    enabled: doc.enabled !== false,
    on: Array.isArray(doc.on) ? doc.on.map(str) : [],
    once: doc.once_per_ticket === true,
    minutes: str(doc.minutes),
    when,
    actions,
  };
}

function leafJson(l: Leaf): Record<string, unknown> {
  const out: Record<string, unknown> = { field: l.field === 'contact.attributes' ? `contact.attributes.${l.key.trim()}` : l.field, op: l.op };
  if (l.op === 'is_set' || l.op === 'is_not_set') return out;
  const kind = FIELDS[l.field]?.kind;
  if (l.op === 'matches') out.value = l.value;
  else if (kind === 'status' || kind === 'priority') out.value = l.list;
  else if (kind === 'team' || kind === 'agent') out.value = l.list.map(Number);
  else if (kind === 'bool') out.value = l.flag;
  else if (kind === 'number') out.value = intOrNull(l.value);
  else if (kind === 'calendar') {
    out.value = l.flag;
    out.calendar = intOrNull(l.calendar);
  } else out.value = splitList(l.value);
  return out;
}

function nodeJson(n: Node): Record<string, unknown> {
  return n.kind === 'leaf' ? leafJson(n) : { [n.mode]: n.items.map(nodeJson) };
}

function actJson(a: Act): Record<string, unknown> {
  const o: Record<string, unknown> = { type: a.type };
  switch (a.type) {
    case 'set_priority':
    case 'set_status':
    case 'add_tag':
    case 'remove_tag':
    case 'add_note':
      o.value = a.value;
      break;
    case 'assign_team':
    case 'send_template':
      o.id = intOrNull(a.id);
      break;
    case 'assign_agent':
      if (a.target === 'agent') o.id = intOrNull(a.id);
      else o.value = a.target;
      break;
    case 'notify':
      if (a.target === 'agent') o.id = intOrNull(a.id);
      else o.target = a.target;
      break;
    case 'create_task':
      o.title = a.title;
      o.due_minutes = intOrNull(a.due);
      if (a.assignee) o.assignee = intOrNull(a.assignee);
      break;
    case 'webhook':
      o.url = a.url.trim();
      break;
  }
  return o;
}

function modelJson(m: Model): Record<string, unknown> {
  const doc: Record<string, unknown> = { name: m.name, enabled: m.enabled, on: m.on, once_per_ticket: m.once };
  if (m.on.some((x) => TIMED.includes(x))) doc.minutes = intOrNull(m.minutes);
  if (m.when.items.length > 0) doc.when = nodeJson(m.when);
  doc.actions = m.actions.map(actJson);
  return doc;
}

/* When an action's type changes, its parameters start from sensible values. */
function resetAct(a: Act, type: string, lookups: Lookups) {
  a.type = type;
  a.value = type === 'set_priority' ? 'urgent' : type === 'set_status' ? 'pending' : '';
  a.id = type === 'assign_team' ? str(lookups.teams[0]?.id) : type === 'send_template' ? str(lookups.templates[0]?.id) : '';
  a.target = type === 'assign_agent' ? 'last_responder' : 'assignee';
  a.title = '';
  a.due = '60';
  a.assignee = '';
  a.url = '';
}

function LeafEditor(props: { t: T; l: Leaf; path: string; n: string; err: FormError; lookups: Lookups; touch: () => void; onRemove: () => void }) {
  const { t, l, path, err, touch, lookups } = props;
  const spec = FIELDS[l.field] ?? FIELDS.text;
  const sr = <span class="sr">{props.n}: </span>;
  const toggle = (x: string, on: boolean) => {
    l.list = on ? [...l.list.filter((y) => y !== x), x] : l.list.filter((y) => y !== x);
    touch();
  };
  const boxes = (items: [string, string][]) => (
    <Group legend={<><span class="sr">{props.n}: </span>{s(t, 'value')}</>} path={`${path}.value`} err={err} class="inline">
      {items.length === 0 && <span class="muted">{c(t, 'empty')}</span>}
      {items.map(([v, label]) => (
        <label key={v} class="check">
          <input type="checkbox" checked={l.list.includes(v)} onChange={(e) => toggle(v, checked(e))} /> {label}
        </label>
      ))}
    </Group>
  );
  const noValue = l.op === 'is_set' || l.op === 'is_not_set';
  let value = null;
  if (!noValue) {
    if (spec.kind === 'status') value = boxes(STATUSES.map((x) => [x, tr(t, 's.' + x)]));
    else if (spec.kind === 'priority') value = boxes(PRIORITIES.map((x) => [x, tr(t, 'p.' + x)]));
    else if (spec.kind === 'team') value = boxes(lookups.teams.map((x) => [String(x.id), x.name]));
    else if (spec.kind === 'agent') value = boxes(lookups.agents.map((x) => [String(x.id), x.name]));
    else if (spec.kind === 'bool' || spec.kind === 'calendar')
      value = (
        <Field label={<>{sr}{s(t, 'value')}</>} path={`${path}.value`} err={err}>
          {(a) => (
            <select {...a} value={l.flag ? 'true' : 'false'} onChange={(e) => { l.flag = val(e) === 'true'; touch(); }}>
              <option value="true">{c(t, 'yes')}</option>
              <option value="false">{c(t, 'no')}</option>
            </select>
          )}
        </Field>
      );
    else
      value = (
        <Field label={<>{sr}{s(t, 'value')}</>} path={`${path}.value`} err={err}
          hint={l.op !== 'matches' && spec.kind !== 'number' ? c(t, 'commaHint') : undefined}>
          {(a) => (
            <input {...a} type={spec.kind === 'number' ? 'number' : 'text'} value={l.value}
              onInput={(e) => { l.value = val(e); touch(); }} />
          )}
        </Field>
      );
  }
  return (
    <div class="leaf" data-path={path}>
      <Field label={<>{sr}{s(t, 'field')}</>} path={`${path}.field`} err={err}>
        {(a) => (
          <select {...a} value={l.field} onChange={(e) => {
            l.field = val(e);
            const sp = FIELDS[l.field];
            if (!sp.ops.includes(l.op)) l.op = sp.ops[0];
            l.list = [];
            l.value = '';
            touch();
          }}>
            {Object.keys(FIELDS).map((f) => <option value={f} key={f}>{tr(t, 'f.' + f)}</option>)}
          </select>
        )}
      </Field>
      {l.field === 'contact.attributes' && (
        <Field label={<>{sr}{s(t, 'attrKey')}</>} path={`${path}.key`} err={err}>
          {(a) => <input {...a} value={l.key} onInput={(e) => { l.key = val(e); touch(); }} />}
        </Field>
      )}
      <Field label={<>{sr}{s(t, 'op')}</>} path={`${path}.op`} err={err}>
        {(a) => (
          <select {...a} value={l.op} onChange={(e) => { l.op = val(e); touch(); }}>
            {spec.ops.map((o) => <option value={o} key={o}>{tr(t, 'o.' + o)}</option>)}
          </select>
        )}
      </Field>
      {value}
      {spec.kind === 'calendar' && (
        <Field label={<>{sr}{s(t, 'calendar')}</>} path={`${path}.calendar`} err={err}>
          {(a) => (
            <ItemSelect {...a} value={l.calendar} onChange={(e) => { l.calendar = val(e); touch(); }}
              blank={s(t, 'choose')} items={lookups.calendars} />
          )}
        </Field>
      )}
      <button type="button" class="secondary remove" onClick={props.onRemove}
        aria-label={`${s(t, 'removeCondition')}: ${props.n}`}>×</button>
    </div>
  );
}

function GroupEditor(props: { t: T; g: Grp; path: string; label: string; depth: number; err: FormError; lookups: Lookups; touch: () => void; onRemove?: () => void }) {
  const { t, g, path, err, touch } = props;
  const arr = `${path}.${g.mode}`;
  return (
    <Group legend={props.label} path={arr} err={err} class="cond-group">
      <Field label={<><span class="sr">{props.label}: </span>{s(t, 'match')}</>} path={`${path}.mode`} err={err} class="mode">
        {(a) => (
          <select {...a} value={g.mode} onChange={(e) => { g.mode = val(e) as 'all' | 'any'; touch(); }}>
            <option value="all">{s(t, 'all')}</option>
            <option value="any">{s(t, 'any')}</option>
          </select>
        )}
      </Field>
      {g.items.length === 0 && props.depth === 1 && <p class="muted">{s(t, 'noConditions')}</p>}
      <ol class="conds">
        {g.items.map((n, i) => {
          const remove = () => {
            g.items.splice(i, 1);
            touch();
          };
          const p = `${arr}[${i}]`;
          const label = `${props.depth > 1 ? props.label + ', ' : ''}${s(t, n.kind === 'leaf' ? 'condition' : 'group').replace('{n}', String(i + 1))}`;
          return (
            <li key={n.k}>
              {n.kind === 'leaf' ? (
                <LeafEditor t={t} l={n} path={p} n={label} err={err} lookups={props.lookups} touch={touch} onRemove={remove} />
              ) : (
                <GroupEditor t={t} g={n} path={p} label={label} depth={props.depth + 1} err={err} lookups={props.lookups} touch={touch} onRemove={remove} />
              )}
            </li>
          );
        })}
      </ol>
      <div class="row">
        <button type="button" class="secondary" onClick={() => { g.items.push(newLeaf()); touch(); }}>
          {s(t, 'addCondition')}<span class="sr"> ({props.label})</span>
        </button>
        {props.depth < 5 && (
          <button type="button" class="secondary" onClick={() => { g.items.push({ k: ++keys, kind: 'group', mode: 'any', items: [newLeaf()] }); touch(); }}>
            {s(t, 'addGroup')}<span class="sr"> ({props.label})</span>
          </button>
        )}
        {props.onRemove && (
          <button type="button" class="secondary" onClick={props.onRemove}>{s(t, 'removeGroup')}<span class="sr"> ({props.label})</span></button>
        )}
      </div>
    </Group>
  );
}

function ActionEditor(props: { t: T; a: Act; i: number; err: FormError; lookups: Lookups; touch: () => void; onRemove: () => void }) {
  const { t, a, i, err, touch, lookups } = props;
  const p = `actions[${i}]`;
  const n = s(t, 'action').replace('{n}', String(i + 1));
  const sr = <span class="sr">{n}: </span>;
  const text = (key: 'value' | 'title' | 'url', label: string, path: string, type = 'text') => (
    <Field label={<>{sr}{label}</>} path={`${p}.${path}`} err={err}>
      {(x) => <input {...x} type={type} value={a[key]} onInput={(e) => { a[key] = val(e); touch(); }} />}
    </Field>
  );
  const pick = (key: 'value' | 'id' | 'target' | 'assignee', label: string, path: string, options: [string, string][], blank?: string) => (
    <Field label={<>{sr}{label}</>} path={`${p}.${path}`} err={err}>
      {(x) => (
        <select {...x} value={a[key]} onChange={(e) => { a[key] = val(e); touch(); }}>
          {blank !== undefined && <option value="">{blank}</option>}
          {options.map(([v, l]) => <option value={v} key={v}>{l}</option>)}
        </select>
      )}
    </Field>
  );
  const agents: [string, string][] = lookups.agents.filter((x) => x.active).map((x) => [String(x.id), x.name]);
  return (
    <div class="action" data-path={p}>
      <Field label={<>{sr}{s(t, 'type')}</>} path={`${p}.type`} err={err}>
        {(x) => (
          <select {...x} value={a.type} onChange={(e) => { resetAct(a, val(e), lookups); touch(); }}>
            {ACTIONS.map((k) => <option value={k} key={k}>{tr(t, 'a.' + k)}</option>)}
          </select>
        )}
      </Field>
      {a.type === 'set_priority' && pick('value', t.t('priority'), 'value', PRIORITIES.map((x) => [x, tr(t, 'p.' + x)]))}
      {a.type === 'set_status' && pick('value', t.t('status'), 'value', STATUSES.map((x) => [x, tr(t, 's.' + x)]))}
      {a.type === 'assign_team' && pick('id', s(t, 'team'), 'id', lookups.teams.map((x) => [String(x.id), x.name]), s(t, 'choose'))}
      {a.type === 'assign_agent' && pick('target', s(t, 'whom'), 'value', ['agent', 'contact_owner', 'last_responder'].map((x) => [x, tr(t, 'm.' + x)]))}
      {(a.type === 'assign_agent' || a.type === 'notify') && a.target === 'agent' && pick('id', s(t, 'agent'), 'id', agents, s(t, 'choose'))}
      {(a.type === 'add_tag' || a.type === 'remove_tag') && text('value', s(t, 'tag'), 'value')}
      {a.type === 'send_template' && pick('id', s(t, 'template'), 'id', lookups.templates.map((x) => [String(x.id), x.name]), s(t, 'choose'))}
      {a.type === 'add_note' && (
        <Field label={<>{sr}{s(t, 'note')}</>} path={`${p}.value`} err={err}>
          {(x) => <textarea {...x} value={a.value} onInput={(e) => { a.value = val(e); touch(); }} />}
        </Field>
      )}
      {a.type === 'notify' && pick('target', s(t, 'target'), 'target', ['assignee', 'team', 'supervisor', 'agent'].map((x) => [x, tr(t, 'n.' + x)]))}
      {a.type === 'create_task' && (
        <>
          {text('title', s(t, 'title'), 'title')}
          <Field label={<>{sr}{s(t, 'due')}</>} path={`${p}.due_minutes`} err={err}>
            {(x) => <input {...x} type="number" min="0" value={a.due} onInput={(e) => { a.due = val(e); touch(); }} />}
          </Field>
          {pick('assignee', s(t, 'assignee'), 'assignee', agents, s(t, 'ticketAssignee'))}
        </>
      )}
      {a.type === 'webhook' && text('url', s(t, 'url'), 'url', 'url')}
      <button type="button" class="secondary remove" onClick={props.onRemove} aria-label={`${s(t, 'removeAction')}: ${n}`}>×</button>
    </div>
  );
}

function RuleEditor(props: { t: T; doc: RuleDoc | null; lookups: Lookups; onDone: (saved: boolean) => void }) {
  const { t, lookups } = props;
  const [m] = useState<Model>(() => modelFrom(props.doc));
  const [, setTick] = useState(0);
  const frm = useForm(t);
  const err = frm.err;
  const touch = () => setTick((x) => x + 1);
  const timed = m.on.some((x) => TIMED.includes(x));
  const title = m.id ? s(t, 'editRule').replace('{name}', props.doc?.name ?? '') : s(t, 'createRule');
  return (
    <EditorForm t={t} form={frm} title={title} class="editor rule-editor" busy={frm.busy}
      send={() => putOrPost('/api/v1/rules', m.id, modelJson(m))} onDone={props.onDone}>
      <Field label={c(t, 'name')} path="name" err={err}>
        {(a) => <input {...a} name="name" value={m.name} onInput={(e) => { m.name = val(e); touch(); }} />}
      </Field>
      <div class="row">
        <label class="check"><input type="checkbox" checked={m.enabled} onChange={(e) => { m.enabled = checked(e); touch(); }} /> {s(t, 'enabled')}</label>
        <label class="check"><input type="checkbox" checked={m.once} onChange={(e) => { m.once = checked(e); touch(); }} /> {s(t, 'once')}</label>
      </div>
      <Group legend={s(t, 'triggers')} path="on" err={err} class="triggers">
        {TRIGGERS.map((x) => (
          <label key={x} class="check">
            <input type="checkbox" checked={m.on.includes(x)}
              onChange={(e) => { m.on = checked(e) ? [...m.on, x] : m.on.filter((y) => y !== x); touch(); }} /> {tr(t, 'e.' + x)}
          </label>
        ))}
      </Group>
      {timed && (
        <Field label={s(t, 'minutes')} path="minutes" err={err}>
          {(a) => <input {...a} type="number" min="1" value={m.minutes} onInput={(e) => { m.minutes = val(e); touch(); }} />}
        </Field>
      )}
      <GroupEditor t={t} g={m.when} path="when" label={s(t, 'conditions')} depth={1} err={err} lookups={lookups} touch={touch} />
      <Group legend={s(t, 'actions')} path="actions" err={err} class="actions-list">
        <ol class="acts">
          {m.actions.map((a, i) => (
            <li key={a.k}>
              <ActionEditor t={t} a={a} i={i} err={err} lookups={lookups} touch={touch}
                onRemove={() => { m.actions.splice(i, 1); touch(); }} />
            </li>
          ))}
        </ol>
        <button type="button" class="secondary" onClick={() => { m.actions.push(newAct()); touch(); }}>{s(t, 'addAction')}</button>
      </Group>
    </EditorForm>
  );
}

function summary(t: T, r: RuleDoc): string {
  const on = Array.isArray(r.on) ? r.on.map((x: string) => tr(t, 'e.' + x)).join(', ') : '';
  const acts = Array.isArray(r.actions) ? r.actions.map((a: any) => tr(t, 'a.' + a.type)).join(', ') : '';
  return `${on} → ${acts}`;
}

export function Rules(props: { t: T; lookups: Lookups; open: number | null }) {
  const { t } = props;
  const [rules, load] = useLoaded<RuleDoc>('/api/v1/rules', 'rules');
  const screen = useListScreen<RuleDoc>(t, '/api/v1/rules', load);
  /* Opened from the Webhooks screen: that rule's editor, as soon as the list
   * has come (not again after each reload, which would reopen it). */
  useEffect(() => {
    if (props.open !== null && rules !== null) screen.setEditing(rules.find((x) => x.id === props.open) ?? null);
  }, [props.open, rules === null]);
  return (
    <ListScreen t={t} screen={screen} items={rules} newLabel={s(t, 'newRule')} empty={s(t, 'noRules')} order={s(t, 'order')} deletable
      class="rules"
      editor={(x, onDone) => <RuleEditor t={t} lookups={props.lookups} doc={x} onDone={onDone} />}
      row={(r) => ({
        class: `item${r.enabled === false ? ' off' : ''}`,
        data: { 'data-rule': r.id },
        what: (
          <>
            <strong>{r.name}</strong> {r.enabled === false && <span class="badge">{s(t, 'disabled')}</span>}
            <span class="muted">{summary(t, r)}</span>
          </>
        ),
      })} />
  );
}
