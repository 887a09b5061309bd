// Business calendars: time zone, weekly hours, holidays (one-off or every
// year) and special working days.
import { useEffect, useRef, useState } from 'preact/hooks';
import { call } from '../api';
import { strings, type T } from '../i18n';
import { c, DeleteButton, Field, FormStatus, Group, checked, placeError, val, type FormError } from './form';
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
  const [err, setErr] = useState<FormError>(null);
  const form = useRef<HTMLFormElement>(null);
  const save = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    const h: Record<string, Interval[]> = {};
    for (const d of DAYS) if (hours[d].trim()) h[d] = parseHours(hours[d]);
    const doc: Record<string, unknown> = {
      name,
      time_zone: zone.trim(),
      hours: h,
      holidays: hols.map((x) => ({ date: x.date, recurring: x.recurring, ...(x.name ? { name: x.name } : {}) })),
      working_days: works.map((x) => ({ date: x.date, hours: parseHours(x.hours), ...(x.name ? { name: x.name } : {}) })),
    };
    const r = k0 ? await call('PUT', `/api/v1/calendars/${k0.id}`, doc) : await call('POST', '/api/v1/calendars', doc);
    if (r.status === 200 || r.status === 201) props.onDone(true);
    else setErr(placeError(form.current, r, t));
  };
  const title = k0 ? s(t, 'editCalendar').replace('{name}', k0.name) : s(t, 'newCalendar');
  const upd = <X,>(arr: X[], i: number, patch: Partial<X>) => arr.map((x, j) => (j === i ? { ...x, ...patch } : x));
  return (
    <form ref={form} class="editor" onSubmit={save} noValidate aria-label={title}>
      <h3>{title}</h3>
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
      <Group legend={s(t, 'holidays')} path="holidays" err={err}>
        <ol class="rows">
          {hols.map((x, i) => {
            const n = s(t, 'holiday').replace('{n}', String(i + 1));
            return (
              <li key={x.k} class="row" data-path={`holidays[${i}]`}>
                <Field label={<><span class="sr">{n}: </span>{s(t, 'date')}</>} path={`holidays[${i}].date`} err={err}>
                  {(a) => <input {...a} type="date" value={x.date} onInput={(e) => setHols(upd(hols, i, { date: val(e) }))} />}
                </Field>
                <Field label={<><span class="sr">{n}: </span>{s(t, 'label')}</>} path={`holidays[${i}].name`} err={err}>
                  {(a) => <input {...a} value={x.name} onInput={(e) => setHols(upd(hols, i, { name: val(e) }))} />}
                </Field>
                <label class="check">
                  <input type="checkbox" checked={x.recurring} onChange={(e) => setHols(upd(hols, i, { recurring: checked(e) }))} />
                  <span class="sr">{n}: </span>{s(t, 'recurring')}
                </label>
                <button type="button" class="secondary remove" aria-label={`${c(t, 'remove')}: ${n}`}
                  onClick={() => setHols(hols.filter((_, j) => j !== i))}>×</button>
              </li>
            );
          })}
        </ol>
        <button type="button" class="secondary" onClick={() => setHols([...hols, { k: ++keys, date: '', recurring: false, name: '' }])}>
          {s(t, 'addHoliday')}
        </button>
      </Group>
      <Group legend={s(t, 'workingDays')} path="working_days" err={err}>
        <ol class="rows">
          {works.map((x, i) => {
            const n = s(t, 'workingDay').replace('{n}', String(i + 1));
            return (
              <li key={x.k} class="row" data-path={`working_days[${i}]`}>
                <Field label={<><span class="sr">{n}: </span>{s(t, 'date')}</>} path={`working_days[${i}].date`} err={err}>
                  {(a) => <input {...a} type="date" value={x.date} onInput={(e) => setWorks(upd(works, i, { date: val(e) }))} />}
                </Field>
                <Field label={<><span class="sr">{n}: </span>{s(t, 'dayHours')}</>} path={`working_days[${i}].hours`} err={err}>
                  {(a) => <input {...a} value={x.hours} placeholder="10:00-15:00" onInput={(e) => setWorks(upd(works, i, { hours: val(e) }))} />}
                </Field>
                <Field label={<><span class="sr">{n}: </span>{s(t, 'label')}</>} path={`working_days[${i}].name`} err={err}>
                  {(a) => <input {...a} value={x.name} onInput={(e) => setWorks(upd(works, i, { name: val(e) }))} />}
                </Field>
                <button type="button" class="secondary remove" aria-label={`${c(t, 'remove')}: ${n}`}
                  onClick={() => setWorks(works.filter((_, j) => j !== i))}>×</button>
              </li>
            );
          })}
        </ol>
        <button type="button" class="secondary" onClick={() => setWorks([...works, { k: ++keys, date: '', hours: '10:00-15:00', name: '' }])}>
          {s(t, 'addWorkingDay')}
        </button>
      </Group>
      <FormStatus err={err} ok="" t={t} />
      <div class="row">
        <button type="submit">{k0 ? c(t, 'save') : c(t, 'create')}</button>
        <button type="button" class="secondary" onClick={() => props.onDone(false)}>{c(t, 'cancel')}</button>
      </div>
    </form>
  );
}

export function Calendars(props: { t: T; lookups: Lookups }) {
  const { t, lookups } = props;
  const [editing, setEditing] = useState<CalendarDoc | 'new' | null>(null);
  const [ok, setOk] = useState('');
  const [err, setErr] = useState<FormError>(null);
  useEffect(() => lookups.reload(), []);
  const remove = async (id: number) => {
    const r = await call('DELETE', `/api/v1/calendars/${id}`);
    setErr(r.status === 200 ? null : placeError(null, r, t));
    lookups.reload();
  };
  if (editing)
    return (
      <CalendarEditor key={editing === 'new' ? 'new' : editing.id} t={t} cal={editing === 'new' ? null : editing}
        onDone={(saved) => { setEditing(null); setOk(saved ? c(t, 'saved') : ''); lookups.reload(); }} />
    );
  return (
    <div>
      <div class="row"><button type="button" onClick={() => { setOk(''); setEditing('new'); }}>{s(t, 'newCalendar')}</button></div>
      <FormStatus err={err} ok={ok} t={t} />
      {lookups.calendars.length === 0 && <p class="muted">{s(t, 'none')}</p>}
      <ul class="items">
        {lookups.calendars.map((x) => (
          <li key={x.id} class="item">
            <div class="what">
              <strong>{x.name}</strong> <span class="muted">{x.time_zone}</span>
              <span class="muted">{DAYS.filter((d) => x.hours?.[d]?.length).map((d) => `${s(t, d).slice(0, 2)} ${hoursText(x.hours?.[d])}`).join('; ')}</span>
            </div>
            <div class="buttons">
              <button type="button" class="secondary" onClick={() => { setOk(''); setEditing(x); }} aria-label={`${c(t, 'edit')}: ${x.name}`}>{c(t, 'edit')}</button>
              <DeleteButton t={t} name={x.name} onDelete={() => remove(x.id)} />
            </div>
          </li>
        ))}
      </ul>
    </div>
  );
}
