// Business calendars: time zone, weekly hours, holidays (one-off or every
// year) and special working days.
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { strings, type T } from '../i18n';
import { EditorForm, ListScreen, putOrPost, useForm, useListScreen } from './crud';
import { c, Field, Group, checked, val, type FormError } from './form';
import { DAYS, type CalendarDoc, type Interval, type Lookups } from './types';

const s = strings({
  ru: {
    newCalendar: 'Новый календарь',
    editCalendar: 'Календарь «{name}»',
    zone: 'Часовой пояс (IANA, например Europe/Moscow)',
    hours: 'Часы работы по дням недели',
    hoursHint: '09:00-13:00, 14:00-18:00; пусто — выходной',
    mon: 'Понедельник',
    tue: 'Вторник',
    wed: 'Среда',
    thu: 'Четверг',
    fri: 'Пятница',
    sat: 'Суббота',
    sun: 'Воскресенье',
    holidays: 'Праздники',
    holiday: 'Праздник {n}',
    date: 'Дата',
    recurring: 'каждый год',
    label: 'Название',
    addHoliday: 'Добавить праздник',
    workingDays: 'Особые рабочие дни',
    workingDay: 'Рабочий день {n}',
    dayHours: 'Часы',
    addWorkingDay: 'Добавить рабочий день',
    none: 'Календарей пока нет.',
  },
  en: {
    newCalendar: 'New calendar',
    editCalendar: 'Calendar “{name}”',
    zone: 'Time zone (IANA, e.g. Europe/Moscow)',
    hours: 'Weekly hours',
    hoursHint: '09:00-13:00, 14:00-18:00; empty — closed',
    mon: 'Monday',
    tue: 'Tuesday',
    wed: 'Wednesday',
    thu: 'Thursday',
    fri: 'Friday',
    sat: 'Saturday',
    sun: 'Sunday',
    holidays: 'Holidays',
    holiday: 'Holiday {n}',
    date: 'Date',
    recurring: 'every year',
    label: 'Name',
    addHoliday: 'Add holiday',
    workingDays: 'Special working days',
    workingDay: 'Working day {n}',
    dayHours: 'Hours',
    addWorkingDay: 'Add working day',
    none: 'No calendars yet.',
  },
});

function hoursText(h: Interval[] | undefined): string {
  return (h ?? []).map(([a, b]) => `${a}-${b}`).join(', ');
}

/* "09:00-13:00, 14:00-18:00" -> [["09:00","13:00"],["14:00","18:00"]];
 * anything malformed is passed on for the API to name. */
function parseHours(text: string): Interval[] {
  return text
    .split(/[,;]/)
    .map((x) => x.trim())
    .filter((x) => x !== '')
    .map((x) => {
      const [a, b] = x.split(/\s*[-–—]\s*/);
      return [a ?? '', b ?? ''] as Interval;
    });
}

let keys = 0;
type Hol = { k: number; date: string; recurring: boolean; name: string };
type Work = { k: number; date: string; hours: string; name: string };

const ZONES: string[] = (() => {
  try {
    return (Intl as unknown as { supportedValuesOf(k: string): string[] }).supportedValuesOf('timeZone');
  } catch {
    return ['Europe/Moscow', 'Asia/Almaty', 'UTC'];
  }
})();

/* One row of a Rows list: its name, read before each of its fields
 * ("Holiday 2: Date"), a change to it, and a labelled text input for its
 * member `key`, placed where an API error naming "holidays[1].date" finds it. */
type RowCtl<X> = {
  n: string;
  patch: (p: Partial<X>) => void;
  text: (key: keyof X & string, label: string, input?: { type?: string; placeholder?: string }) => JSX.Element;
};

/* The numbered rows of the holidays or the special working days: the
 * fields of each, a button to remove it, and one to add another. */
function Rows<X extends { k: number }>(props: {
  t: T;
  legend: string;
  path: string;
  err: FormError;
  items: X[];
  onChange: (items: X[]) => void;
  label: string;
  add: string;
  blank: () => X;
  children: (x: X, row: RowCtl<X>) => JSX.Element;
}) {
  const { t, items, onChange, path, err } = props;
  return (
    <Group legend={props.legend} path={path} err={err}>
      <ol class="rows">
        {items.map((x, i) => {
          const n = props.label.replace('{n}', String(i + 1));
          const patch = (p: Partial<X>) => onChange(items.map((y, j) => (j === i ? { ...y, ...p } : y)));
          const text: RowCtl<X>['text'] = (key, label, input) => (
            <Field label={<><span class="sr">{n}: </span>{label}</>} path={`${path}[${i}].${key}`} err={err}>
              {(a) => <input {...a} {...input} value={String(x[key])} onInput={(e) => patch({ [key]: val(e) } as Partial<X>)} />}
            </Field>
          );
          return (
            <li key={x.k} class="row" data-path={`${path}[${i}]`}>
              {props.children(x, { n, patch, text })}
              <button type="button" class="secondary remove" aria-label={`${c(t, 'remove')}: ${n}`}
                onClick={() => onChange(items.filter((_, j) => j !== i))}>×</button>
            </li>
          );
        })}
      </ol>
      <button type="button" class="secondary" onClick={() => onChange([...items, props.blank()])}>{props.add}</button>
    </Group>
  );
}

function CalendarEditor(props: { t: T; cal: CalendarDoc | null; onDone: (saved: boolean) => void }) {
  const { t } = props;
  const k0 = props.cal;
  const [name, setName] = useState(k0?.name ?? '');
  const [zone, setZone] = useState(k0?.time_zone ?? 'Europe/Moscow');
  const [hours, setHours] = useState<Record<string, string>>(() =>
    Object.fromEntries(DAYS.map((d) => [d, k0 ? hoursText(k0.hours?.[d]) : ['sat', 'sun'].includes(d) ? '' : '09:00-18:00'])),
  );
  const [hols, setHols] = useState<Hol[]>(() =>
    (k0?.holidays ?? []).map((h) => ({ k: ++keys, date: h.date, recurring: h.recurring === true, name: h.name ?? '' })),
  );
  const [works, setWorks] = useState<Work[]>(() =>
    (k0?.working_days ?? []).map((w) => ({ k: ++keys, date: w.date, hours: hoursText(w.hours), name: w.name ?? '' })),
  );
  const frm = useForm(t);
  const err = frm.err;
  const send = () => {
    const h: Record<string, Interval[]> = {};
    for (const d of DAYS) if (hours[d].trim()) h[d] = parseHours(hours[d]);
    const doc: Record<string, unknown> = {
      name,
      time_zone: zone.trim(),
      hours: h,
      holidays: hols.map((x) => ({ date: x.date, recurring: x.recurring, ...(x.name ? { name: x.name } : {}) })),
      working_days: works.map((x) => ({ date: x.date, hours: parseHours(x.hours), ...(x.name ? { name: x.name } : {}) })),
    };
    return putOrPost('/api/v1/calendars', k0?.id, doc);
  };
  const title = k0 ? s(t, 'editCalendar').replace('{name}', k0.name) : s(t, 'newCalendar');
  return (
    <EditorForm t={t} form={frm} title={title} isNew={!k0} send={send} onDone={props.onDone}>
      <Field label={c(t, 'name')} path="name" err={err}>{(a) => <input {...a} value={name} onInput={(e) => setName(val(e))} />}</Field>
      <Field label={s(t, 'zone')} path="time_zone" err={err}>
        {(a) => <input {...a} list="sb-zones" value={zone} onInput={(e) => setZone(val(e))} />}
      </Field>
      <datalist id="sb-zones">{ZONES.map((z) => <option key={z} value={z} />)}</datalist>
      <Group legend={s(t, 'hours')} path="hours" err={err}>
        <small class="hint">{s(t, 'hoursHint')}</small>
        {DAYS.map((d) => (
          <Field key={d} label={s(t, d)} path={`hours.${d}`} err={err} class="day">
            {(a) => <input {...a} value={hours[d]} onInput={(e) => setHours({ ...hours, [d]: val(e) })} />}
          </Field>
        ))}
      </Group>
      <Rows t={t} legend={s(t, 'holidays')} path="holidays" err={err} items={hols} onChange={setHols}
        label={s(t, 'holiday')} add={s(t, 'addHoliday')} blank={() => ({ k: ++keys, date: '', recurring: false, name: '' })}>
        {(x, row) => (
          <>
            {row.text('date', s(t, 'date'), { type: 'date' })}
            {row.text('name', s(t, 'label'))}
            <label class="check">
              <input type="checkbox" checked={x.recurring} onChange={(e) => row.patch({ recurring: checked(e) })} />
              <span class="sr">{row.n}: </span>{s(t, 'recurring')}
            </label>
          </>
        )}
      </Rows>
      <Rows t={t} legend={s(t, 'workingDays')} path="working_days" err={err} items={works} onChange={setWorks}
        label={s(t, 'workingDay')} add={s(t, 'addWorkingDay')} blank={() => ({ k: ++keys, date: '', hours: '10:00-15:00', name: '' })}>
        {(_, row) => (
          <>
            {row.text('date', s(t, 'date'), { type: 'date' })}
            {row.text('hours', s(t, 'dayHours'), { placeholder: '10:00-15:00' })}
            {row.text('name', s(t, 'label'))}
          </>
        )}
      </Rows>
    </EditorForm>
  );
}

export function Calendars(props: { t: T; lookups: Lookups }) {
  const { t, lookups } = props;
  const screen = useListScreen<CalendarDoc>(t, '/api/v1/calendars', lookups.reload);
  useEffect(() => {
    void lookups.reload();
  }, []);
  return (
    <ListScreen t={t} screen={screen} items={lookups.calendars} newLabel={s(t, 'newCalendar')} empty={s(t, 'none')} deletable
      editor={(x, onDone) => <CalendarEditor t={t} cal={x} onDone={onDone} />}
      row={(x) => ({
        what: (
          <>
            <strong>{x.name}</strong> <span class="muted">{x.time_zone}</span>
            <span class="muted">{DAYS.filter((d) => x.hours?.[d]?.length).map((d) => `${s(t, d).slice(0, 2)} ${hoursText(x.hours?.[d])}`).join('; ')}</span>
          </>
        ),
      })} />
  );
}
