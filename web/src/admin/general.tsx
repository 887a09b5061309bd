// The engine's general settings (GET/PATCH /api/v1/settings): the
// satisfaction survey, the automatic-reply limit, the company name, the
// default language, the channel weights and the installation's time zone
// (the day of the supervisors' dashboard).
import { useEffect, useRef, useState } from 'preact/hooks';
import { call } from '../api';
import { strings, type T } from '../i18n';
import { c, Field, FormStatus, intOrNull, numOrNull, placeError, val, type FormError } from './form';
import type { Lookups } from './types';

const s = strings({
  ru: {
    csat: 'Шаблон опроса удовлетворённости (после решения)',
    noSurvey: 'не отправлять опрос',
    perHour: 'Автоответов одному клиенту в час, не больше',
    company: 'Название компании ({{company.name}})',
    language: 'Язык автоответов по умолчанию',
    chat: 'Вес чата в загрузке оператора (0–1)',
    email: 'Вес письма в загрузке оператора (0–1)',
    weightsHint: 'Звонок всегда занимает оператора целиком.',
    timezone: 'Часовой пояс',
    timezoneHint: 'Название IANA, например Europe/Moscow. По нему монитор считает сутки «сегодня».',
    callback: 'Перезвонить после пропущенного звонка в течение, мин',
    callbackHint: 'Срок задачи «перезвонить», которую оставляет пропущенный звонок (1–10080).',
  },
  en: {
    csat: 'Satisfaction survey template (after resolution)',
    noSurvey: 'send no survey',
    perHour: 'Automatic replies per customer and hour, at most',
    company: 'Company name ({{company.name}})',
    language: 'Default language of automatic replies',
    chat: 'Weight of a chat on an agent’s load (0–1)',
    email: 'Weight of an email on an agent’s load (0–1)',
    weightsHint: 'A call always takes the whole agent.',
    timezone: 'Time zone',
    timezoneHint: 'An IANA name such as Europe/Moscow. The dashboard’s “today” is this zone’s day.',
    callback: 'Call back a missed call within, minutes',
    callbackHint: 'The due time of the call-back task a missed call leaves (1–10080).',
  },
});

type SettingsDoc = {
  csat_template_id: number | null;
  auto_replies_per_hour: number;
  company_name: string;
  default_language: string;
  weights: { chat: number; email: number };
  timezone: string;
  missed_call_callback_minutes: number;
};

/* Suggestions only: any zone the server's tzdata has is accepted. */
const ZONES = [
  'Europe/Kaliningrad', 'Europe/Moscow', 'Europe/Samara', 'Asia/Yekaterinburg', 'Asia/Omsk', 'Asia/Novosibirsk',
  'Asia/Krasnoyarsk', 'Asia/Irkutsk', 'Asia/Yakutsk', 'Asia/Vladivostok', 'Asia/Magadan', 'Asia/Kamchatka',
  'Asia/Almaty', 'Asia/Tashkent', 'Europe/Minsk', 'UTC',
];

export function General(props: { t: T; lookups: Lookups }) {
  const { t } = props;
  const [f, setF] = useState<Record<string, string> | null>(null);
  const [err, setErr] = useState<FormError>(null);
  const [ok, setOk] = useState('');
  const form = useRef<HTMLFormElement>(null);
  const load = async () => {
    const r = await call<{ settings: SettingsDoc }>('GET', '/api/v1/settings');
    if (r.status !== 200) return;
    const x = r.json.settings;
    setF({
      csat: x.csat_template_id === null ? '' : String(x.csat_template_id),
      perHour: String(x.auto_replies_per_hour),
      company: x.company_name,
      language: x.default_language,
      chat: String(Math.round(x.weights.chat * 10000) / 10000),
      email: String(Math.round(x.weights.email * 10000) / 10000),
      timezone: x.timezone,
      callback: String(x.missed_call_callback_minutes),
    });
  };
  useEffect(() => {
    load();
  }, []);
  if (!f) return <p class="muted">{c(t, 'loading')}</p>;
  const set = (k: string) => (e: Event) => setF({ ...f, [k]: val(e) });
  const save = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    setOk('');
    const r = await call('PATCH', '/api/v1/settings', {
      csat_template_id: intOrNull(f.csat),
      auto_replies_per_hour: intOrNull(f.perHour),
      company_name: f.company,
      default_language: f.language.trim(),
      weights: { chat: numOrNull(f.chat), email: numOrNull(f.email) },
      timezone: f.timezone.trim(),
      missed_call_callback_minutes: intOrNull(f.callback),
    });
    if (r.status === 200) {
      setOk(c(t, 'saved'));
      load();
    } else setErr(placeError(form.current, r, t));
  };
  return (
    <form ref={form} class="editor" onSubmit={save} noValidate>
      <Field label={s(t, 'csat')} path="csat_template_id" err={err}>
        {(a) => (
          <select {...a} value={f.csat} onChange={set('csat')}>
            <option value="">{s(t, 'noSurvey')}</option>
            {props.lookups.templates.map((x) => <option key={x.id} value={x.id}>{x.name}</option>)}
          </select>
        )}
      </Field>
      <Field label={s(t, 'callback')} path="missed_call_callback_minutes" err={err} hint={s(t, 'callbackHint')}>
        {(a) => <input {...a} type="number" min="1" max="10080" value={f.callback} onInput={set('callback')} />}
      </Field>
      <Field label={s(t, 'perHour')} path="auto_replies_per_hour" err={err}>
        {(a) => <input {...a} type="number" min="1" max="16" value={f.perHour} onInput={set('perHour')} />}
      </Field>
      <Field label={s(t, 'company')} path="company_name" err={err}>
        {(a) => <input {...a} value={f.company} onInput={set('company')} />}
      </Field>
      <Field label={s(t, 'language')} path="default_language" err={err}>
        {(a) => <input {...a} value={f.language} onInput={set('language')} />}
      </Field>
      <Field label={s(t, 'timezone')} path="timezone" err={err} hint={s(t, 'timezoneHint')}>
        {(a) => (
          <>
            <input {...a} list="sb-timezones" autocomplete="off" spellcheck={false} value={f.timezone}
              onInput={set('timezone')} />
            <datalist id="sb-timezones">{ZONES.map((z) => <option key={z} value={z} />)}</datalist>
          </>
        )}
      </Field>
      <Field label={s(t, 'chat')} path="weights.chat" err={err} hint={s(t, 'weightsHint')}>
        {(a) => <input {...a} inputMode="decimal" value={f.chat} onInput={set('chat')} />}
      </Field>
      <Field label={s(t, 'email')} path="weights.email" err={err}>
        {(a) => <input {...a} inputMode="decimal" value={f.email} onInput={set('email')} />}
      </Field>
      <FormStatus err={err} ok={ok} t={t} />
      <div class="row"><button type="submit">{c(t, 'save')}</button></div>
    </form>
  );
}
