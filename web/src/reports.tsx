// Supervisors' reports: the service figures of a chosen period (today,
// yesterday, the last 7 days, this month or chosen dates, in the browser's
// time zone) by agent, team, channel or tag, with a total, and the same
// table as a CSV download (GET /api/v1/metrics/report, cookie session).
import { useEffect, useState } from 'preact/hooks';
import { call, type Agent } from './api';
import { number, strings, type T } from './i18n';
import './reports.css';

const s = strings({
  ru: {
    period: 'Период',
    today: 'Сегодня',
    yesterday: 'Вчера',
    week: 'Последние 7 дней',
    month: 'Этот месяц',
    custom: 'Выбрать даты',
    from: 'С',
    to: 'По',
    by: 'Группировка',
    'by.agent': 'По операторам',
    'by.team': 'По командам',
    'by.channel': 'По каналам',
    'by.tag': 'По тегам',
    'col.agent': 'Оператор',
    'col.team': 'Команда',
    'col.channel': 'Канал',
    'col.tag': 'Тег',
    'none.agent': 'Без ответственного',
    'none.team': 'Без команды',
    'none.channel': 'Неизвестный канал',
    'none.tag': 'Без тегов',
    created: 'Создано',
    resolved: 'Решено',
    frt: 'Первый ответ',
    resolution: 'Решение',
    median: 'медиана',
    p90: '90-й процентиль',
    business: 'медиана в рабочее время',
    sla: 'SLA в срок',
    csat: 'CSAT',
    reassignments: 'Переназначения',
    total: 'Итого',
    export: 'Скачать CSV',
    loading: 'Загрузка…',
    failed: 'Не удалось загрузить отчёт',
    badRange: 'Дата «по» должна быть не раньше даты «с», период — не длиннее 366 дней',
    empty: 'За этот период ничего нет',
    answers: 'оценок',
    min: 'мин',
    hour: 'ч',
    day: 'д',
    'channel.api': 'API',
    'channel.webchat': 'Чат на сайте',
    'channel.phone': 'Телефон',
    caption: 'Отчёт',
  },
  en: {
    period: 'Period',
    today: 'Today',
    yesterday: 'Yesterday',
    week: 'Last 7 days',
    month: 'This month',
    custom: 'Choose dates',
    from: 'From',
    to: 'To',
    by: 'Group by',
    'by.agent': 'By agent',
    'by.team': 'By team',
    'by.channel': 'By channel',
    'by.tag': 'By tag',
    'col.agent': 'Agent',
    'col.team': 'Team',
    'col.channel': 'Channel',
    'col.tag': 'Tag',
    'none.agent': 'Unassigned',
    'none.team': 'No team',
    'none.channel': 'Unknown channel',
    'none.tag': 'No tags',
    created: 'Created',
    resolved: 'Resolved',
    frt: 'First response',
    resolution: 'Resolution',
    median: 'median',
    p90: '90th percentile',
    business: 'median in business hours',
    sla: 'SLA met',
    csat: 'CSAT',
    reassignments: 'Reassignments',
    total: 'Total',
    export: 'Export CSV',
    loading: 'Loading…',
    failed: 'Could not load the report',
    badRange: '“To” must not be before “From”, and the period at most 366 days',
    empty: 'Nothing in this period',
    answers: 'answers',
    min: 'min',
    hour: 'h',
    day: 'd',
    'channel.api': 'API',
    'channel.webchat': 'Website chat',
    'channel.phone': 'Phone',
    caption: 'Report',
  },
});

type Preset = 'today' | 'yesterday' | 'week' | 'month' | 'custom';
type By = 'agent' | 'team' | 'channel' | 'tag';
const PRESETS: Preset[] = ['today', 'yesterday', 'week', 'month', 'custom'];
const GROUPINGS: By[] = ['agent', 'team', 'channel', 'tag'];

type Durations = {
  count: number;
  median_minutes: number | null;
  p90_minutes: number | null;
  business_median_minutes: number | null;
};
type Figures = {
  tickets_created: number;
  tickets_resolved: number;
  first_response: Durations;
  resolution: Durations;
  sla: Record<'first_response' | 'next_response' | 'resolution' | 'all', { met: number; missed: number; met_pct: number | null }>;
  reassignments: number;
  csat: { count: number; average: number | null };
};
type Row = Figures & { key: number | string | null; name: string | null };
type Report = { from: string; to: string; by: By; rows: Row[]; total: Figures };

const pad = (n: number) => String(n).padStart(2, '0');

/* "2026-11-01" of a local date. */
function dateInput(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/* The API's time format with the browser's offset at that instant
 * ("2026-11-01T00:00:00+03:00"), so the CSV file is named by local days. */
function localIso(d: Date): string {
  const off = -d.getTimezoneOffset();
  const a = Math.abs(off);
  return `${dateInput(d)}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
    `${off >= 0 ? '+' : '-'}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

function parseDate(v: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
  return m ? new Date(+m[1], +m[2] - 1, +m[3]) : null;
}

/* [from, to) as local midnights; null for an impossible custom range. */
export function period(p: Preset, customFrom: string, customTo: string, now = new Date()): [Date, Date] | null {
  const y = now.getFullYear(), m = now.getMonth(), d = now.getDate();
  switch (p) {
    case 'today': return [new Date(y, m, d), new Date(y, m, d + 1)];
    case 'yesterday': return [new Date(y, m, d - 1), new Date(y, m, d)];
    case 'week': return [new Date(y, m, d - 6), new Date(y, m, d + 1)];
    case 'month': return [new Date(y, m, 1), new Date(y, m + 1, 1)];
    case 'custom': {
      const a = parseDate(customFrom), b = parseDate(customTo);
      if (!a || !b) return null;
      const end = new Date(b.getFullYear(), b.getMonth(), b.getDate() + 1);
      if (end <= a || end.getTime() - a.getTime() > 366 * 86400000) return null;
      return [a, end];
    }
  }
}

/* Minutes as "45 min", "2 h 05 min", "3 d 4 h" in the interface's language. */
function duration(t: T, minutes: number | null): string {
  if (minutes === null) return '—';
  if (minutes < 60) return `${number(t, minutes, 1)} ${s(t, 'min')}`;
  const total = Math.round(minutes);
  const days = Math.floor(total / 1440), hours = Math.floor((total % 1440) / 60), mins = total % 60;
  if (days > 0) return `${number(t, days)} ${s(t, 'day')} ${hours} ${s(t, 'hour')}`;
  return `${hours} ${s(t, 'hour')} ${pad(mins)} ${s(t, 'min')}`;
}

function rowName(t: T, by: By, r: Row): string {
  if (r.key === null) return s(t, `none.${by}`);
  if (by === 'channel' && (r.name === 'api' || r.name === 'webchat' || r.name === 'phone'))
    return s(t, `channel.${r.name}`);
  return r.name ?? '';
}

function Cells(props: { t: T; f: Figures }) {
  const { t, f } = props;
  const sla = f.sla.all;
  return (
    <>
      <td data-col="created">{number(t, f.tickets_created)}</td>
      <td data-col="resolved">{number(t, f.tickets_resolved)}</td>
      <td data-col="frt-median">{duration(t, f.first_response.median_minutes)}</td>
      <td data-col="frt-p90">{duration(t, f.first_response.p90_minutes)}</td>
      <td data-col="frt-business">{duration(t, f.first_response.business_median_minutes)}</td>
      <td data-col="resolution-median">{duration(t, f.resolution.median_minutes)}</td>
      <td data-col="resolution-p90">{duration(t, f.resolution.p90_minutes)}</td>
      <td data-col="sla">{sla.met_pct === null ? '—' : `${number(t, sla.met_pct, 1)} %`}
        {sla.met + sla.missed > 0 && <span class="sub">{number(t, sla.met)} / {number(t, sla.met + sla.missed)}</span>}
      </td>
      <td data-col="csat">{number(t, f.csat.average, 1)}
        {f.csat.count > 0 && <span class="sub">{number(t, f.csat.count)} {s(t, 'answers')}</span>}
      </td>
      <td data-col="reassignments">{number(t, f.reassignments)}</td>
    </>
  );
}

export function Reports(props: { me: Agent; t: T }) {
  const { t } = props;
  const today = new Date();
  const [preset, setPreset] = useState<Preset>('today');
  const [customFrom, setCustomFrom] = useState(dateInput(new Date(today.getFullYear(), today.getMonth(), 1)));
  const [customTo, setCustomTo] = useState(dateInput(today));
  const [by, setBy] = useState<By>('agent');
  // The report with the query it answers: a table never shows another period's figures.
  const [report, setReport] = useState<{ query: string; data: Report } | null>(null);
  const [state, setState] = useState<'loading' | 'ok' | 'failed'>('loading');

  const range = period(preset, customFrom, customTo);
  const query = range
    ? `from=${encodeURIComponent(localIso(range[0]))}&to=${encodeURIComponent(localIso(range[1]))}&by=${by}`
    : null;
  // Spreadsheets set to Russian read ';' between fields and ',' in decimals.
  const csvQuery = t.lang === 'ru' ? '&format=csv&lang=ru&delimiter=semicolon' : '&format=csv&lang=en';

  useEffect(() => {
    if (query === null) return;
    let current = true;
    setState('loading');
    call<Report>('GET', `/api/v1/metrics/report?${query}`).then(
      (r) => {
        if (!current) return;
        if (r.status === 200) {
          setReport({ query, data: r.json });
          setState('ok');
        } else {
          setState('failed');
        }
      },
      () => current && setState('failed'),
    );
    return () => {
      current = false;
    };
  }, [query]);

  const shown = report && report.query === query ? report.data : null;
  const fmt = new Intl.DateTimeFormat(t.lang, { dateStyle: 'medium' });
  const caption = range
    ? `${s(t, 'caption')}: ${fmt.format(range[0])} – ${fmt.format(new Date(range[1].getTime() - 1))}, ${s(t, `by.${by}`).toLowerCase()}`
    : '';

  return (
    <main class="reports" aria-label={t.t('reports')}>
      <h1>{t.t('reports')}</h1>
      <form class="report-controls" onSubmit={(e) => e.preventDefault()}>
        <label>
          {s(t, 'period')}
          <select name="period" value={preset} onChange={(e) => setPreset((e.target as HTMLSelectElement).value as Preset)}>
            {PRESETS.map((p) => <option key={p} value={p}>{s(t, p)}</option>)}
          </select>
        </label>
        {preset === 'custom' && (
          <>
            <label>
              {s(t, 'from')}
              <input type="date" name="from" value={customFrom} required
                onInput={(e) => setCustomFrom((e.target as HTMLInputElement).value)} />
            </label>
            <label>
              {s(t, 'to')}
              <input type="date" name="to" value={customTo} required
                onInput={(e) => setCustomTo((e.target as HTMLInputElement).value)} />
            </label>
          </>
        )}
        <label>
          {s(t, 'by')}
          <select name="by" value={by} onChange={(e) => setBy((e.target as HTMLSelectElement).value as By)}>
            {GROUPINGS.map((g) => <option key={g} value={g}>{s(t, `by.${g}`)}</option>)}
          </select>
        </label>
        {query && (
          <a class="export" href={`/api/v1/metrics/report?${query}${csvQuery}`} download>{s(t, 'export')}</a>
        )}
      </form>
      {!range && <p class="error" role="alert">{s(t, 'badRange')}</p>}
      {range && state === 'failed' && <p class="error" role="alert">{s(t, 'failed')}</p>}
      {range && state === 'loading' && !shown && <p class="muted" role="status">{s(t, 'loading')}</p>}
      {range && shown && (
        <div class="report-table" tabIndex={0} role="region" aria-label={caption}>
          <table>
            <caption>{caption}</caption>
            <thead>
              <tr>
                <th scope="col" rowSpan={2}>{s(t, `col.${by}`)}</th>
                <th scope="col" rowSpan={2}>{s(t, 'created')}</th>
                <th scope="col" rowSpan={2}>{s(t, 'resolved')}</th>
                <th scope="colgroup" colSpan={3}>{s(t, 'frt')}</th>
                <th scope="colgroup" colSpan={2}>{s(t, 'resolution')}</th>
                <th scope="col" rowSpan={2}>{s(t, 'sla')}</th>
                <th scope="col" rowSpan={2}>{s(t, 'csat')}</th>
                <th scope="col" rowSpan={2}>{s(t, 'reassignments')}</th>
              </tr>
              <tr>
                <th scope="col">{s(t, 'median')}</th>
                <th scope="col">{s(t, 'p90')}</th>
                <th scope="col">{s(t, 'business')}</th>
                <th scope="col">{s(t, 'median')}</th>
                <th scope="col">{s(t, 'p90')}</th>
              </tr>
            </thead>
            <tbody>
              {shown.rows.length === 0 && (
                <tr><td colSpan={11} class="muted">{s(t, 'empty')}</td></tr>
              )}
              {shown.rows.map((r) => (
                <tr key={String(r.key)} data-key={r.key === null ? '' : String(r.key)} class={r.key === null ? 'none' : ''}>
                  <th scope="row">{rowName(t, by, r)}</th>
                  <Cells t={t} f={r} />
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr class="total">
                <th scope="row">{s(t, 'total')}</th>
                <Cells t={t} f={shown.total} />
              </tr>
            </tfoot>
          </table>
        </div>
      )}
    </main>
  );
}
