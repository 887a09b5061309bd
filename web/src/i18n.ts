// Every string of the workspace in Russian and English. The language comes
// from the agent's settings, else the browser; numbers and dates are
// formatted with Intl in that language.
export type Lang = 'ru' | 'en';

const ru = {
  title: 'Switchboard',
  inbox: 'Обращения',
  dashboard: 'Монитор',
  reports: 'Отчёты',
  settings: 'Настройки',
  sections: 'Разделы',
  email: 'Эл. почта',
  password: 'Пароль',
  signIn: 'Войти',
  signOut: 'Выйти',
  badLogin: 'Неверная почта или пароль',
  online: 'На линии',
  away: 'Отошёл',
  offline: 'Не в сети',
  mine: 'Мои',
  unassigned: 'Без ответственного',
  all: 'Все',
  waiting: 'Ждут клиента',
  noTickets: 'Обращений нет',
  selectTicket: 'Выберите обращение слева',
  reply: 'Ответить',
  note: 'Заметка',
  send: 'Отправить',
  resolve: 'Решено',
  replyPlaceholder: 'Ответ клиенту…',
  notePlaceholder: 'Внутренняя заметка для коллег…',
  status: 'Статус',
  priority: 'Приоритет',
  assignee: 'Ответственный',
  nobody: 'никто',
  dueFirst: 'Первый ответ до',
  dueNext: 'Следующий ответ до',
  dueResolution: 'Решение до',
  met: 'в срок',
  missed: 'просрочено',
  breached: 'просрочено',
  warning: 'скоро срок',
  live: 'в реальном времени',
  reconnecting: 'переподключение…',
  language: 'Язык',
  sendFailed: 'Не удалось отправить',
  keys: 'j/k — вверх/вниз, r — ответ, n — заметка, e — решено',
  customer: 'Клиент',
  agentLabel: 'Оператор',
  system: 'Система',
  unread: 'новое',
  'status.new': 'новое',
  'status.open': 'в работе',
  'status.pending': 'ждёт клиента',
  'status.resolved': 'решено',
  'status.closed': 'закрыто',
  'priority.low': 'низкий',
  'priority.normal': 'обычный',
  'priority.high': 'высокий',
  'priority.urgent': 'срочный',
  card: 'Карточка клиента',
  tasksView: 'Задачи',
  callBack: 'Перезвонить',
  due: 'Срок',
  done: 'Готово',
  overdue: 'просрочено',
  noTasks: 'Задач нет',
  alerts: 'Оповещения',
  newWork: 'Новая работа',
  newMessage: 'Новое сообщение',
  tickets: 'Обращения',
  vip: 'VIP',
  template: 'Шаблон…',
  identities: 'Контакты',
  'delivery.queued': 'в очереди',
  'delivery.sent': 'отправлено',
  'delivery.delivered': 'доставлено',
  'delivery.failed': 'не доставлено',
  'delivery.received': 'получено',
};

type Key = keyof typeof ru;

const en: Record<Key, string> = {
  title: 'Switchboard',
  inbox: 'Inbox',
  dashboard: 'Dashboard',
  reports: 'Reports',
  settings: 'Settings',
  sections: 'Sections',
  email: 'Email',
  password: 'Password',
  signIn: 'Sign in',
  signOut: 'Sign out',
  badLogin: 'Wrong email or password',
  online: 'Online',
  away: 'Away',
  offline: 'Offline',
  mine: 'Mine',
  unassigned: 'Unassigned',
  all: 'All',
  waiting: 'Waiting for customer',
  noTickets: 'No tickets',
  selectTicket: 'Pick a ticket on the left',
  reply: 'Reply',
  note: 'Note',
  send: 'Send',
  resolve: 'Resolve',
  replyPlaceholder: 'Reply to the customer…',
  notePlaceholder: 'Internal note for colleagues…',
  status: 'Status',
  priority: 'Priority',
  assignee: 'Assignee',
  nobody: 'nobody',
  dueFirst: 'First response due',
  dueNext: 'Next response due',
  dueResolution: 'Resolution due',
  met: 'met',
  missed: 'missed',
  breached: 'breached',
  warning: 'due soon',
  live: 'live',
  reconnecting: 'reconnecting…',
  language: 'Language',
  sendFailed: 'Could not send',
  keys: 'j/k — down/up, r — reply, n — note, e — resolve',
  customer: 'Customer',
  agentLabel: 'Agent',
  system: 'System',
  unread: 'new',
  'status.new': 'new',
  'status.open': 'open',
  'status.pending': 'pending',
  'status.resolved': 'resolved',
  'status.closed': 'closed',
  'priority.low': 'low',
  'priority.normal': 'normal',
  'priority.high': 'high',
  'priority.urgent': 'urgent',
  card: 'Customer card',
  tasksView: 'Tasks',
  callBack: 'Call back',
  due: 'Due',
  done: 'Done',
  overdue: 'overdue',
  noTasks: 'No tasks',
  alerts: 'Alerts',
  newWork: 'New work',
  newMessage: 'New message',
  tickets: 'Tickets',
  vip: 'VIP',
  template: 'Template…',
  identities: 'Contacts',
  'delivery.queued': 'queued',
  'delivery.sent': 'sent',
  'delivery.delivered': 'delivered',
  'delivery.failed': 'not delivered',
  'delivery.received': 'received',
};

const dictionaries: Record<Lang, Record<Key, string>> = { ru, en };

export function browserLang(): Lang {
  return (navigator.language || 'ru').toLowerCase().startsWith('ru') ? 'ru' : 'en';
}

export function translator(lang: Lang) {
  const d = dictionaries[lang];
  const t = (k: Key) => d[k];
  const time = (iso: string | null) =>
    iso ? new Intl.DateTimeFormat(lang, { dateStyle: 'short', timeStyle: 'short' }).format(new Date(iso)) : '';
  return { t, time, lang };
}

export type T = ReturnType<typeof translator>;
export type { Key };

/* A module's own strings, kept beside the module:
 *   const s = strings({ ru: { x: 'Икс' }, en: { x: 'X' } });
 *   s(t, 'x')
 * Both languages must name the same keys (the type checker says so). */
export function strings<K extends string>(d: { ru: Record<K, string>; en: Record<K, string> }) {
  return (t: T, k: K) => d[t.lang][k];
}

export function number(t: T, n: number | null | undefined, digits = 0) {
  if (n === null || n === undefined) return '—';
  return new Intl.NumberFormat(t.lang, { maximumFractionDigits: digits }).format(n);
}
