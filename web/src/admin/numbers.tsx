// Phone numbers (DIDs, voice): the digits callers dial, the language of
// the prompts they hear, what answers (a menu, a forwarding scheme, a
// queue, an agent, ...) and,
// with a business calendar, what answers outside its hours and on its
// holidays, whether calls are recorded and whether the caller is asked to
// rate every call an agent answered (/api/v1/numbers).
import { useState } from 'preact/hooks';
import { strings, type T } from '../i18n';
import { EditorForm, ListScreen, putOrPost, useForm, useListScreen, useLoaded } from './crud';
import { c, CheckField, Field, ItemSelect, val } from './form';
import {
  DestGroup, destDoc, ds, destState, destText, NUMBER_ACTIONS, OPERATOR_ACTIONS,
  type MenuDoc, type NumberDoc, type Pickers, type SchemeDoc,
} from './destination';
import type { Lookups } from './types';

const s = strings({
  ru: {
    newNumber: 'Новый номер',
    editNumber: 'Номер {number}',
    number: 'Номер (цифры, которые набирают)',
    numberHint: 'например 100 или +74951234567',
    language: 'Язык записей',
    ru: 'русский',
    en: 'английский',
    entry: 'Кто отвечает',
    calendar: 'Рабочее время (календарь)',
    always: 'нет — всегда рабочее время',
    afterHours: 'В нерабочее время',
    afterHoursBlank: 'как в рабочее время',
    holidays: 'В праздники',
    holidaysBlank: 'как в нерабочее время',
    operator: 'Оператор (куда ведёт «0» в меню)',
    operatorBlank: 'не задан',
    none: 'Номеров пока нет.',
    afterShort: 'в нерабочее время: {x}',
    record: 'Запись разговоров',
    recordDefault: 'как в настройках сервера ([sip] record_calls)',
    recordOn: 'записывать',
    recordOff: 'не записывать',
    rating: 'Просить клиента оценить разговор',
    ratingHint:
      'Для каждого звонка на этот номер, на который ответил оператор (через очередь, меню, добавочный или схему переадресации): когда оператор кладёт трубку первым, клиент слышит «Пожалуйста, оцените разговор: нажмите от 1 до 5». Очередь, в настройках которой оценка включена, просит и без этого.',
  },
  en: {
    newNumber: 'New number',
    editNumber: 'Number {number}',
    number: 'Number (the digits dialled)',
    numberHint: 'e.g. 100 or +74951234567',
    language: 'Prompt language',
    ru: 'Russian',
    en: 'English',
    entry: 'What answers',
    calendar: 'Business hours (calendar)',
    always: 'none — always open',
    afterHours: 'After hours',
    afterHoursBlank: 'as in business hours',
    holidays: 'On holidays',
    holidaysBlank: 'as after hours',
    operator: 'Operator (where “0” in a menu goes)',
    operatorBlank: 'not set',
    none: 'No phone numbers yet.',
    afterShort: 'after hours: {x}',
    record: 'Call recording',
    recordDefault: 'as the server says ([sip] record_calls)',
    recordOn: 'record',
    recordOff: 'do not record',
    rating: 'Ask the caller to rate the call',
    ratingHint:
      'For every call to this number an agent answers (through a queue, a menu, an extension or a forwarding scheme): when the agent hangs up first, the caller hears “Please rate the call from 1 to 5”. A queue whose own rating is on asks anyway.',
  },
});

function NumberEditor(props: { t: T; num: NumberDoc | null; pickers: Pickers; lookups: Lookups; onDone: (saved: boolean) => void }) {
  const { t, pickers, lookups } = props;
  const n0 = props.num;
  const [f, setF] = useState(() => ({
    name: n0?.name ?? '',
    number: n0?.number ?? '',
    language: n0?.language ?? 'ru',
    calendar: n0?.calendar_id ? String(n0.calendar_id) : '',
    record: n0?.record_calls === true ? 'on' : n0?.record_calls === false ? 'off' : '',
    rating: n0?.rating === true,
  }));
  const [entry, setEntry] = useState(() => destState(n0?.entry ?? (n0 ? undefined : { action: 'menu' })));
  const [after, setAfter] = useState(() => destState(n0?.after_hours));
  const [hols, setHols] = useState(() => destState(n0?.holidays));
  const [operator, setOperator] = useState(() => destState(n0?.operator));
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: val(e) });
  const frm = useForm(t);
  const err = frm.err;
  const send = () => {
    const doc: Record<string, unknown> = { name: f.name, number: f.number.trim(), language: f.language };
    const e = destDoc(entry);
    if (e) doc.entry = e;
    if (f.calendar) doc.calendar_id = Number(f.calendar);
    if (f.record) doc.record_calls = f.record === 'on';
    if (f.rating) doc.rating = true; /* off is the default */
    const a = destDoc(after);
    if (a) doc.after_hours = a;
    const h = destDoc(hols);
    if (h) doc.holidays = h;
    const o = destDoc(operator);
    if (o) doc.operator = o;
    return putOrPost('/api/v1/numbers', n0?.id, doc);
  };
  const title = n0 ? s(t, 'editNumber').replace('{number}', n0.number) : s(t, 'newNumber');
  /* After-hours and holiday answers mean something only with a calendar. */
  const timed = f.calendar !== '' || after.action !== '' || hols.action !== '';
  return (
    <EditorForm t={t} form={frm} title={title} isNew={!n0} send={send} onDone={props.onDone}>
      <Field label={s(t, 'number')} path="number" err={err} hint={s(t, 'numberHint')}>
        {(a) => <input {...a} value={f.number} onInput={set('number')} inputMode="tel" autocomplete="off" />}
      </Field>
      <Field label={c(t, 'name')} path="name" err={err}>{(a) => <input {...a} value={f.name} onInput={set('name')} />}</Field>
      <Field label={s(t, 'language')} path="language" err={err}>
        {(a) => (
          <select {...a} value={f.language} onChange={set('language')}>
            <option value="ru">{s(t, 'ru')}</option>
            <option value="en">{s(t, 'en')}</option>
          </select>
        )}
      </Field>
      <DestGroup t={t} legend={s(t, 'entry')} path="entry" err={err} value={entry} onChange={setEntry}
        actions={NUMBER_ACTIONS} pickers={pickers} blank={ds(t, 'choose')} />
      <Field label={s(t, 'calendar')} path="calendar_id" err={err}>
        {(a) => <ItemSelect {...a} value={f.calendar} onChange={set('calendar')} blank={s(t, 'always')} items={lookups.calendars} />}
      </Field>
      {timed && (
        <>
          <DestGroup t={t} legend={s(t, 'afterHours')} path="after_hours" err={err} value={after} onChange={setAfter}
            actions={NUMBER_ACTIONS} pickers={pickers} blank={s(t, 'afterHoursBlank')} />
          <DestGroup t={t} legend={s(t, 'holidays')} path="holidays" err={err} value={hols} onChange={setHols}
            actions={NUMBER_ACTIONS} pickers={pickers} blank={s(t, 'holidaysBlank')} />
        </>
      )}
      <DestGroup t={t} legend={s(t, 'operator')} path="operator" err={err} value={operator} onChange={setOperator}
        actions={OPERATOR_ACTIONS} pickers={pickers} blank={s(t, 'operatorBlank')} />
      <Field label={s(t, 'record')} path="record_calls" err={err}>
        {(a) => (
          <select {...a} value={f.record} onChange={set('record')}>
            <option value="">{s(t, 'recordDefault')}</option>
            <option value="on">{s(t, 'recordOn')}</option>
            <option value="off">{s(t, 'recordOff')}</option>
          </select>
        )}
      </Field>
      <CheckField path="rating" label={s(t, 'rating')} hint={s(t, 'ratingHint')} err={err} checked={f.rating}
        onChange={(rating) => setF({ ...f, rating })} />
    </EditorForm>
  );
}

export function PhoneNumbers(props: { t: T; lookups: Lookups }) {
  const { t, lookups } = props;
  const [numbers, load] = useLoaded<NumberDoc>('/api/v1/numbers', 'numbers');
  const [menus] = useLoaded<MenuDoc>('/api/v1/ivr-menus', 'ivr_menus');
  const [schemes] = useLoaded<SchemeDoc>('/api/v1/forwarding-schemes', 'forwarding_schemes');
  const screen = useListScreen<NumberDoc>(t, '/api/v1/numbers', load);
  const pickers: Pickers = { teams: lookups.teams, agents: lookups.agents, menus: menus ?? [], schemes: schemes ?? [] };
  return (
    <ListScreen t={t} screen={screen} items={numbers} newLabel={s(t, 'newNumber')} empty={s(t, 'none')} deletable
      editor={(x, onDone) => <NumberEditor t={t} num={x} pickers={pickers} lookups={lookups} onDone={onDone} />}
      row={(x) => ({
        data: { 'data-number': x.id },
        what: (
          <>
            <strong>{x.number}</strong> <span class="badge">{x.language ?? 'ru'}</span>
            <span>{x.name}</span>
            <span class="muted">
              {`→ ${destText(t, x.entry, pickers)}`}
              {x.after_hours ? `; ${s(t, 'afterShort').replace('{x}', destText(t, x.after_hours, pickers))}` : ''}
            </span>
          </>
        ),
      })} />
  );
}
