// IVR menus (voice): a prompt, then a key per option — each key sends the
// caller somewhere (a queue, an agent, voicemail, a submenu, ...) — with
// extension dialing, the timeouts, and where a caller goes when nothing or
// something invalid is typed (/api/v1/ivr-menus). Nesting depth and loops
// are checked by the API, which names the option that breaks them.
import { useState } from 'preact/hooks';
import { strings, type T } from '../i18n';
import { EditorForm, ListScreen, putOrPost, useForm, useListScreen, useLoaded } from './crud';
import { c, CheckField, Field, Group, intOrNull, val } from './form';
import {
  DestFields, DestGroup, destDoc, ds, destState, destText, FALLBACK_ACTIONS, OPERATOR_ACTIONS, OPTION_ACTIONS,
  type DestState, type MenuDoc, type Pickers,
} from './destination';
import type { Lookups } from './types';

const s = strings({
  ru: {
    newMenu: 'Новое меню',
    editMenu: 'Меню «{name}»',
    prompt: 'Запись приветствия (имя)',
    promptHint: 'латиница, цифры и _, например menu_main',
    options: 'Клавиши',
    option: 'Вариант {n}',
    digit: 'Клавиша',
    addOption: 'Добавить клавишу',
    noOptions: 'Клавиш пока нет.',
    extension: 'Набор добавочного номера (3 цифры — оператор с этим номером)',
    timeout: 'Ждать выбора, секунд',
    interdigit: 'Пауза между цифрами добавочного, секунд',
    retries: 'Повторов при неверном выборе',
    invalidPrompt: 'Запись «неверный выбор» (имя)',
    defaultIs: 'пусто — {x}',
    fallback: 'Если ничего не выбрано',
    fallbackBlank: 'по умолчанию: оператору, иначе отбой',
    operator: 'Оператор меню (куда ведёт «0»)',
    operatorBlank: 'по умолчанию: оператор номера',
    none: 'Голосовых меню пока нет.',
    noKeys: 'без клавиш',
  },
  en: {
    newMenu: 'New menu',
    editMenu: 'Menu “{name}”',
    prompt: 'Greeting prompt (name)',
    promptHint: 'a-z, 0-9 and _, e.g. menu_main',
    options: 'Keys',
    option: 'Option {n}',
    digit: 'Key',
    addOption: 'Add a key',
    noOptions: 'No keys yet.',
    extension: 'Extension dialing (3 digits ring the agent with that extension)',
    timeout: 'Wait for a choice, seconds',
    interdigit: 'Pause between extension digits, seconds',
    retries: 'Retries after an invalid choice',
    invalidPrompt: '“Invalid choice” prompt (name)',
    defaultIs: 'empty — {x}',
    fallback: 'When nothing is chosen',
    fallbackBlank: 'default: the operator, else hang up',
    operator: 'Menu operator (where “0” goes)',
    operatorBlank: 'default: the number’s operator',
    none: 'No IVR menus yet.',
    noKeys: 'no keys',
  },
});

const DIGITS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '*', '#'];
const MAX_OPTIONS = 12;

let keys = 0;
type Opt = { k: number; digit: string; dest: DestState };

function MenuEditor(props: { t: T; menu: MenuDoc | null; pickers: Pickers; onDone: (saved: boolean) => void }) {
  const { t, pickers } = props;
  const m0 = props.menu;
  const str = (v: unknown) => (v === undefined || v === null ? '' : String(v));
  const [f, setF] = useState(() => ({
    name: m0?.name ?? '',
    prompt: m0?.prompt ?? '',
    extension: m0?.extension_dialing === true,
    timeout: str(m0?.timeout_seconds),
    interdigit: str(m0?.interdigit_seconds),
    retries: str(m0?.invalid_retries),
    invalidPrompt: m0?.invalid_prompt ?? '',
  }));
  const [opts, setOpts] = useState<Opt[]>(() =>
    (m0?.options ?? []).map((o) => ({ k: ++keys, digit: o.digit, dest: destState(o) })),
  );
  const [fallback, setFallback] = useState(() => destState(m0?.fallback));
  const [operator, setOperator] = useState(() => destState(m0?.operator));
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: val(e) });
  const frm = useForm(t);
  const err = frm.err;
  /* A submenu may be any other menu (the API refuses loops and depth). */
  const mine: Pickers = { ...pickers, menus: pickers.menus.filter((x) => x.id !== m0?.id) };
  const send = () => {
    const doc: Record<string, unknown> = {
      name: f.name,
      ...(f.prompt.trim() ? { prompt: f.prompt.trim() } : {}),
      options: opts.map((o) => ({ digit: o.digit, ...destDoc(o.dest) })),
    };
    if (f.extension || m0?.extension_dialing !== undefined) doc.extension_dialing = f.extension;
    if (f.timeout.trim()) doc.timeout_seconds = intOrNull(f.timeout);
    if (f.interdigit.trim()) doc.interdigit_seconds = intOrNull(f.interdigit);
    if (f.retries.trim()) doc.invalid_retries = intOrNull(f.retries);
    if (f.invalidPrompt.trim()) doc.invalid_prompt = f.invalidPrompt.trim();
    const fb = destDoc(fallback);
    if (fb) doc.fallback = fb;
    const op = destDoc(operator);
    if (op) doc.operator = op;
    return putOrPost('/api/v1/ivr-menus', m0?.id, doc);
  };
  const addOption = () => {
    const digit = DIGITS.find((d) => !opts.some((o) => o.digit === d)) ?? '1';
    setOpts([...opts, { k: ++keys, digit, dest: destState({ action: 'queue' }) }]);
  };
  const title = m0 ? s(t, 'editMenu').replace('{name}', m0.name) : s(t, 'newMenu');
  const num = (k: 'timeout' | 'interdigit' | 'retries', label: string, path: string, min: number, max: number, dflt: number) => (
    <Field label={label} path={path} err={err} class="small" hint={s(t, 'defaultIs').replace('{x}', String(dflt))}>
      {(a) => <input {...a} type="number" min={min} max={max} placeholder={String(dflt)} value={f[k]} onInput={set(k)} />}
    </Field>
  );
  return (
    <EditorForm t={t} form={frm} title={title} isNew={!m0} send={send} onDone={props.onDone}>
      <Field label={c(t, 'name')} path="name" err={err}>{(a) => <input {...a} value={f.name} onInput={set('name')} />}</Field>
      <Field label={s(t, 'prompt')} path="prompt" err={err} hint={s(t, 'promptHint')}>
        {(a) => <input {...a} value={f.prompt} onInput={set('prompt')} placeholder="menu_main" autocomplete="off" spellcheck={false} />}
      </Field>
      <Group legend={s(t, 'options')} path="options" err={err}>
        {opts.length === 0 && <p class="muted">{s(t, 'noOptions')}</p>}
        <ol class="rows ivr-options">
          {opts.map((o, i) => {
            const n = s(t, 'option').replace('{n}', String(i + 1));
            const patch = (p: Partial<Opt>) => setOpts(opts.map((y, j) => (j === i ? { ...y, ...p } : y)));
            return (
              <li key={o.k}>
                <Group legend={n} path={`options[${i}]`} err={err} class="inline option">
                  <Field label={<><span class="sr">{n}: </span>{s(t, 'digit')}</>} path={`options[${i}].digit`} err={err} class="digit">
                    {(a) => (
                      <select {...a} value={o.digit} onChange={(e) => patch({ digit: val(e) })}>
                        {DIGITS.map((d) => <option key={d} value={d}>{d}</option>)}
                      </select>
                    )}
                  </Field>
                  <span class="arrow" aria-hidden="true">→</span>
                  <DestFields t={t} path={`options[${i}]`} prefix={n} err={err} value={o.dest} onChange={(dest) => patch({ dest })}
                    actions={OPTION_ACTIONS} pickers={mine} blank={ds(t, 'choose')} />
                  <button type="button" class="secondary remove" aria-label={`${c(t, 'remove')}: ${n}`}
                    onClick={() => setOpts(opts.filter((_, j) => j !== i))}>×</button>
                </Group>
              </li>
            );
          })}
        </ol>
        <button type="button" class="secondary" disabled={opts.length >= MAX_OPTIONS} onClick={addOption}>{s(t, 'addOption')}</button>
      </Group>
      <CheckField path="extension_dialing" label={s(t, 'extension')} checked={f.extension} onChange={(on) => setF({ ...f, extension: on })} />
      <div class="row numbers-row">
        {num('timeout', s(t, 'timeout'), 'timeout_seconds', 1, 60, 5)}
        {num('interdigit', s(t, 'interdigit'), 'interdigit_seconds', 1, 10, 3)}
        {num('retries', s(t, 'retries'), 'invalid_retries', 0, 5, 2)}
      </div>
      <Field label={s(t, 'invalidPrompt')} path="invalid_prompt" err={err} hint={s(t, 'defaultIs').replace('{x}', 'invalid_choice')}>
        {(a) => <input {...a} value={f.invalidPrompt} onInput={set('invalidPrompt')} placeholder="invalid_choice" autocomplete="off" spellcheck={false} />}
      </Field>
      <DestGroup t={t} legend={s(t, 'fallback')} path="fallback" err={err} value={fallback} onChange={setFallback}
        actions={FALLBACK_ACTIONS} pickers={mine} blank={s(t, 'fallbackBlank')} />
      <DestGroup t={t} legend={s(t, 'operator')} path="operator" err={err} value={operator} onChange={setOperator}
        actions={OPERATOR_ACTIONS} pickers={mine} blank={s(t, 'operatorBlank')} />
    </EditorForm>
  );
}

export function IvrMenus(props: { t: T; lookups: Lookups }) {
  const { t, lookups } = props;
  const [menus, load] = useLoaded<MenuDoc>('/api/v1/ivr-menus', 'ivr_menus');
  const screen = useListScreen<MenuDoc>(t, '/api/v1/ivr-menus', load);
  const pickers: Pickers = { teams: lookups.teams, agents: lookups.agents, menus: menus ?? [] };
  return (
    <ListScreen t={t} screen={screen} items={menus} newLabel={s(t, 'newMenu')} empty={s(t, 'none')} deletable
      editor={(x, onDone) => <MenuEditor t={t} menu={x} pickers={pickers} onDone={onDone} />}
      row={(x) => ({
        data: { 'data-menu': x.id },
        what: (
          <>
            <strong>{x.name}</strong> <span class="badge">{c(t, 'id')} {x.id}</span>
            <span class="muted">{x.prompt}</span>
            <span class="keys">
              {(x.options ?? []).length
                ? (x.options ?? []).map((o) => `${o.digit} → ${destText(t, o, pickers)}`).join(', ')
                : s(t, 'noKeys')}
            </span>
          </>
        ),
      })} />
  );
}
