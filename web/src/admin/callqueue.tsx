// A team's call queue (routing.call_queue, see sb_config_call_queue in
// src/engine/config.h): who of the team rings and how, how long a caller
// waits and what then, the announcements of their place in line, the
// callback key, "ringback" (the caller is not answered while waiting), and
// "rating" (the caller rates the call when the agent hangs up first).
// An empty field is left out of the document, so the default applies; keys
// this form does not edit (hold_prompt) are kept as they were. Every control
// sits at its JSON path so the API's 422 lands beside it.
import { useState } from 'preact/hooks';
import { strings, type T } from '../i18n';
import { checked, Field, Group, intOrNull, type FormError } from './form';

export const QUEUE_STRATEGIES = ['ring_all', 'longest_idle', 'fewest_calls', 'random', 'round_robin'] as const;
export type QueueStrategy = (typeof QUEUE_STRATEGIES)[number];

export type CallQueue = {
  strategy?: QueueStrategy | null;
  ring_timeout_seconds?: number | null;
  wrapup_seconds?: number | null;
  max_wait_seconds?: number | null;
  announce_seconds?: number | null;
  preferred_seconds?: number | null;
  retry_seconds?: number | null;
  callback_digit?: string | null;
  hold_prompt?: string | null;
  max_wait_fallback?: 'voicemail' | 'hangup' | null;
  ringback?: boolean | null;
  rating?: boolean | null;
  record_calls?: boolean | null;
};

const q = strings({
  ru: {
    legend: 'Очередь звонков',
    intro: 'Как команда принимает звонки, которые ей передаёт голосовое меню. Пустое поле — значение по умолчанию.',
    strategy: 'Порядок вызова операторов',
    default: 'по умолчанию — всем сразу',
    'st.ring_all': 'всем сразу',
    'st.longest_idle': 'дольше всех без звонка',
    'st.fewest_calls': 'меньше всех звонков',
    'st.random': 'случайно',
    'st.round_robin': 'по кругу',
    'ex.ring_all': 'Звонят телефоны всех свободных операторов, звонок достаётся первому ответившему.',
    'ex.longest_idle': 'Звонит тому, кто дольше всех свободен после своего последнего звонка.',
    'ex.fewest_calls': 'Звонит тому, кто сегодня принял меньше всех звонков этой очереди.',
    'ex.random': 'Звонит случайно выбранному свободному оператору.',
    'ex.round_robin': 'По очереди: следующему после того, кто ответил на прошлый звонок.',
    ring: 'Сколько звонит телефон оператора, секунд',
    ringHint: 'пусто — общая настройка телефонии ([sip], обычно 20); 5–300',
    wrapup: 'Пауза после разговора, секунд',
    wrapupHint: 'оператору не звонят, пока он заканчивает работу со звонком; пусто — 0; до 3600',
    maxWait: 'Максимальное ожидание, секунд',
    maxWaitHint: '0 — ждать без ограничения; пусто — общая настройка ([sip], обычно 120); до 7200',
    fallback: 'Когда ожидание истекло',
    'fb.default': 'по умолчанию — голосовая почта',
    'fb.voicemail': 'голосовая почта команды',
    'fb.hangup': 'прощание и отбой',
    announce: 'Сообщать место в очереди каждые, секунд',
    announceHint: 'пусто или 0 — не сообщать; иначе 10–3600',
    callback: 'Клавиша «перезвоните мне»',
    callbackNone: 'нет',
    callbackHint: 'нажав её, клиент оставляет заявку на обратный звонок вместо ожидания',
    ringback: 'Не отвечать, пока клиент ждёт: он слышит гудки',
    ringbackHint:
      'Звонок не принят, пока не ответит оператор, поэтому клиент не слышит ни музыки, ни сообщений о месте в очереди и не может нажать клавишу обратного звонка.',
    offRingback: 'недоступно, пока клиент слышит гудки',
    record: 'Запись разговоров',
    recordHint: 'Для звонков, принятых через эту очередь; сильнее настройки номера.',
    'rec.default': 'как у номера или сервера',
    'rec.on': 'записывать',
    'rec.off': 'не записывать',
    rating: 'Просить клиента оценить разговор',
    ratingHint:
      'Когда оператор кладёт трубку первым, клиент слышит «Пожалуйста, оцените разговор: нажмите от 1 до 5». Оценка видна в журнале звонков и в показателях очередей. Номер, у которого оценка включена, просит её и без этого.',
    retry: 'Пауза перед новым кругом вызовов, секунд',
    retryHint: 'когда не ответил ни один свободный оператор; пусто — 3; 0–300',
    preferred: 'Сколько звонить только «своему» оператору клиента, секунд',
    preferredHint: 'постоянному клиенту сначала звонит его оператор; пусто или 0 — как телефон оператора; до 300',
    badge: 'звонки',
  },
  en: {
    legend: 'Call queue',
    intro: 'How the team takes the calls the IVR sends it. Leave a field empty for the default.',
    strategy: 'Ring strategy',
    default: 'default — ring all',
    'st.ring_all': 'ring all',
    'st.longest_idle': 'longest idle',
    'st.fewest_calls': 'fewest calls',
    'st.random': 'random',
    'st.round_robin': 'round robin',
    'ex.ring_all': 'Every free agent’s phone rings at once; the first to answer gets the call.',
    'ex.longest_idle': 'Rings the agent who has been free longest since their last call.',
    'ex.fewest_calls': 'Rings the agent who answered the fewest calls of this queue today.',
    'ex.random': 'Rings a free agent chosen at random.',
    'ex.round_robin': 'In turn: the next agent after the one who answered the last call.',
    ring: 'Ring each agent for, seconds',
    ringHint: 'empty — the phone settings’ ([sip], usually 20); 5–300',
    wrapup: 'Wrap-up after a call, seconds',
    wrapupHint: 'the agent is not rung while finishing a call’s work; empty — 0; up to 3600',
    maxWait: 'Longest wait, seconds',
    maxWaitHint: '0 — wait forever; empty — the phone settings’ ([sip], usually 120); up to 7200',
    fallback: 'When the wait runs out',
    'fb.default': 'default — voicemail',
    'fb.voicemail': 'the team’s voicemail',
    'fb.hangup': 'goodbye and hang up',
    announce: 'Announce the place in line every, seconds',
    announceHint: 'empty or 0 — never; else 10–3600',
    callback: '“Call me back” key',
    callbackNone: 'none',
    callbackHint: 'pressing it leaves a call-back request instead of waiting',
    ringback: 'Do not answer while the caller waits: they hear ringing',
    ringbackHint:
      'The call is not answered until an agent picks up, so the caller hears no hold music and no place in line, and cannot press the callback key.',
    offRingback: 'not available while the caller hears ringing',
    record: 'Call recording',
    recordHint: 'For calls answered through this queue; wins over the number’s setting.',
    'rec.default': 'as the number or the server say',
    'rec.on': 'record',
    'rec.off': 'do not record',
    rating: 'Ask the caller to rate the call',
    ratingHint:
      'When the agent hangs up first, the caller hears “Please rate the call from 1 to 5”. The rating shows in the call log and the queue figures. A number whose own rating is on asks anyway.',
    retry: 'Pause before ringing everyone again, seconds',
    retryHint: 'after no free agent answered; empty — 3; 0–300',
    preferred: 'Ring the customer’s own agent alone for, seconds',
    preferredHint: 'a returning customer’s agent is rung first; empty or 0 — as long as an agent’s phone rings; up to 300',
    badge: 'calls',
  },
});

const KEYS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#'];

/* The form's values: text as typed ('' = leave the key out). */
export type QueueState = {
  strategy: string;
  ring: string;
  wrapup: string;
  maxWait: string;
  fallback: string;
  announce: string;
  callback: string;
  ringback: boolean;
  rating: boolean;
  record: '' | 'on' | 'off';
  retry: string;
  preferred: string;
};

const str = (v: unknown) => (v === undefined || v === null ? '' : String(v));

export function queueState(d: CallQueue | null | undefined): QueueState {
  return {
    strategy: str(d?.strategy),
    ring: str(d?.ring_timeout_seconds),
    wrapup: str(d?.wrapup_seconds),
    maxWait: str(d?.max_wait_seconds),
    fallback: str(d?.max_wait_fallback),
    announce: str(d?.announce_seconds),
    callback: str(d?.callback_digit),
    ringback: d?.ringback === true,
    rating: d?.rating === true,
    record: d?.record_calls === true ? 'on' : d?.record_calls === false ? 'off' : '',
    retry: str(d?.retry_seconds),
    preferred: str(d?.preferred_seconds),
  };
}

/* The document to save: what `before` had that this form does not edit,
 * and every field that is not empty; undefined when nothing is left. With
 * ringback the announcements and the callback key are left out (the API
 * refuses them together). */
export function queueDoc(f: QueueState, before: CallQueue | null | undefined): CallQueue | undefined {
  const doc: Record<string, unknown> = { ...(before ?? {}) };
  const put = (key: keyof CallQueue, v: unknown) => {
    delete doc[key];
    if (v !== null && v !== '' && v !== undefined && v !== false) doc[key] = v;
  };
  put('strategy', f.strategy);
  put('ring_timeout_seconds', intOrNull(f.ring));
  put('wrapup_seconds', intOrNull(f.wrapup));
  put('max_wait_seconds', intOrNull(f.maxWait));
  put('max_wait_fallback', f.fallback);
  put('announce_seconds', f.ringback ? null : intOrNull(f.announce));
  put('callback_digit', f.ringback ? null : f.callback);
  put('ringback', f.ringback);
  put('rating', f.rating);
  delete doc.record_calls; /* false is a value here: "do not record" */
  if (f.record !== '') doc.record_calls = f.record === 'on';
  put('retry_seconds', intOrNull(f.retry));
  put('preferred_seconds', intOrNull(f.preferred));
  return Object.keys(doc).length ? (doc as CallQueue) : undefined;
}

/* The list's badge: the strategy, when one is set. */
export function queueBadge(t: T, d: CallQueue | null | undefined): string | null {
  const st = d?.strategy;
  return st && (QUEUE_STRATEGIES as readonly string[]).includes(st) ? `${q(t, 'badge')}: ${q(t, `st.${st}`)}` : null;
}

const P = 'routing.call_queue';

export function CallQueueFields(props: { t: T; err: FormError; value: QueueState; onChange: (v: QueueState) => void }) {
  const { t, err, value: f } = props;
  const set = (k: keyof QueueState) => (e: Event) => props.onChange({ ...f, [k]: (e.target as HTMLInputElement).value });
  const num = (k: 'ring' | 'wrapup' | 'maxWait' | 'announce' | 'retry' | 'preferred', key: string, min: number, max: number,
    hint: string, disabled = false) => (
    <Field label={q(t, k)} path={`${P}.${key}`} err={err} hint={disabled ? q(t, 'offRingback') : hint}>
      {(a) => <input {...a} type="number" min={min} max={max} value={f[k]} onInput={set(k)} disabled={disabled} />}
    </Field>
  );
  const explain = q(t, `ex.${(f.strategy || 'ring_all') as QueueStrategy}`);
  return (
    <Group legend={q(t, 'legend')} path={P} err={err} class="call-queue">
      <p class="hint">{q(t, 'intro')}</p>
      {/* A grid of fields (the rule triggers' layout), each as tall as it needs. */}
      <div class="triggers numbers-row">
        <Field label={q(t, 'strategy')} path={`${P}.strategy`} err={err} hint={explain}>
          {(a) => (
            <select {...a} value={f.strategy} onChange={set('strategy')}>
              <option value="">{q(t, 'default')}</option>
              {QUEUE_STRATEGIES.map((x) => <option key={x} value={x}>{q(t, `st.${x}`)}</option>)}
            </select>
          )}
        </Field>
        {num('ring', 'ring_timeout_seconds', 5, 300, q(t, 'ringHint'))}
        {num('wrapup', 'wrapup_seconds', 0, 3600, q(t, 'wrapupHint'))}
        {num('maxWait', 'max_wait_seconds', 0, 7200, q(t, 'maxWaitHint'))}
        <Field label={q(t, 'fallback')} path={`${P}.max_wait_fallback`} err={err}>
          {(a) => (
            <select {...a} value={f.fallback} onChange={set('fallback')}>
              <option value="">{q(t, 'fb.default')}</option>
              <option value="voicemail">{q(t, 'fb.voicemail')}</option>
              <option value="hangup">{q(t, 'fb.hangup')}</option>
            </select>
          )}
        </Field>
        {num('retry', 'retry_seconds', 0, 300, q(t, 'retryHint'))}
        {num('preferred', 'preferred_seconds', 0, 300, q(t, 'preferredHint'))}
        <Check t={t} err={err} name="ringback" on={f.ringback} onChange={(ringback) => props.onChange({ ...f, ringback })} />
        {num('announce', 'announce_seconds', 0, 3600, q(t, 'announceHint'), f.ringback)}
        <Field label={q(t, 'callback')} path={`${P}.callback_digit`} err={err}
          hint={f.ringback ? q(t, 'offRingback') : q(t, 'callbackHint')}>
          {(a) => (
            <select {...a} value={f.callback} onChange={set('callback')} disabled={f.ringback}>
              <option value="">{q(t, 'callbackNone')}</option>
              {KEYS.map((k) => <option key={k} value={k}>{k}</option>)}
            </select>
          )}
        </Field>
        <Check t={t} err={err} name="rating" on={f.rating} onChange={(rating) => props.onChange({ ...f, rating })} />
        <Field label={q(t, 'record')} path={`${P}.record_calls`} err={err} hint={q(t, 'recordHint')}>
          {(a) => (
            <select {...a} value={f.record} onChange={set('record')}>
              <option value="">{q(t, 'rec.default')}</option>
              <option value="on">{q(t, 'rec.on')}</option>
              <option value="off">{q(t, 'rec.off')}</option>
            </select>
          )}
        </Field>
      </div>
    </Group>
  );
}

let seq = 0;

/* A checkbox of the queue (ringback, with why it turns the announcements
 * and the callback key off; rating), with its hint and its own API error. */
function Check(props: { t: T; err: FormError; name: 'ringback' | 'rating'; on: boolean; onChange: (on: boolean) => void }) {
  const { t, err, name } = props;
  const path = `${P}.${name}`;
  const [id] = useState(() => `cq-${name}-${++seq}`);
  const mine = err && err.path === path ? err.message : '';
  return (
    <div class={`field${mine ? ' invalid' : ''}`} data-path={path}>
      <label class="check">
        <input type="checkbox" checked={props.on} onChange={(e) => props.onChange(checked(e))}
          aria-describedby={`${id}-hint${mine ? ` ${id}-err` : ''}`} aria-invalid={mine ? true : undefined} />{' '}
        {q(t, name)}
      </label>
      <small id={`${id}-hint`} class="hint">{q(t, name === 'ringback' ? 'ringbackHint' : 'ratingHint')}</small>
      {mine && <p id={`${id}-err`} class="field-error" role="alert">{mine}</p>}
    </div>
  );
}
