// What every settings screen shares: labelled fields whose API validation
// error is shown beside them (aria-describedby), the mapping of an API
// error to the nearest field on the form, the common words, and the
// controls several screens use (pickers of teams, agents or calendars,
// checkboxes, buttons that ask first).
import type { ComponentChildren, JSX } from 'preact';
import { useState } from 'preact/hooks';
import { call, type ApiError } from '../api';
import { strings, type T } from '../i18n';

export const c = strings({
  ru: {
    save: 'Сохранить',
    create: 'Создать',
    cancel: 'Отмена',
    edit: 'Изменить',
    delete: 'Удалить',
    add: 'Добавить',
    remove: 'Убрать',
    up: 'Выше',
    down: 'Ниже',
    saved: 'Сохранено',
    notSaved: 'Не сохранено: исправьте отмеченное поле',
    failed: 'Не удалось',
    confirmDelete: 'Удалить «{name}»? Это нельзя отменить.',
    yes: 'Да',
    no: 'Нет',
    any: 'любой',
    none: '—',
    name: 'Название',
    loading: 'Загрузка…',
    empty: 'Пока ничего нет',
    commaHint: 'через запятую',
    minutes: 'мин',
    id: '№',
    actionsCol: 'Действия',
  },
  en: {
    save: 'Save',
    create: 'Create',
    cancel: 'Cancel',
    edit: 'Edit',
    delete: 'Delete',
    add: 'Add',
    remove: 'Remove',
    up: 'Up',
    down: 'Down',
    saved: 'Saved',
    notSaved: 'Not saved: correct the marked field',
    failed: 'Failed',
    confirmDelete: 'Delete “{name}”? This cannot be undone.',
    yes: 'Yes',
    no: 'No',
    any: 'any',
    none: '—',
    name: 'Name',
    loading: 'Loading…',
    empty: 'Nothing here yet',
    commaHint: 'comma-separated',
    minutes: 'min',
    id: 'No.',
    actionsCol: 'Actions',
  },
});

/* An API error placed on a form: `path` is the data-path of the field it
 * belongs to ('' when no field on the form matches: shown at the form). */
export type FormError = { path: string; message: string } | null;

/* The field an API error names. The server says "field 'when.all[0].op':
 * …", "field 'name' is required", "unknown field 'x'" (see the API's
 * ConfigValidationFailed); a `field` member, where present, wins. */
export function errorField(e: ApiError): string {
  if (e.error?.field) return e.error.field;
  const m = /^(?:unknown )?field '([^']*)'/.exec(e.error?.message ?? '');
  return m ? m[1] : '';
}

/* The message without the "field 'x':" lead, which the placement says. */
function errorText(e: ApiError): string {
  const msg = e.error?.message ?? '';
  return msg.replace(/^field '[^']*':\s*/, '') || msg;
}

/* "when.all[0].value" -> "when.all[0]" -> "when.all" -> "when" -> "". */
function parentPath(p: string): string {
  const m = /^(.*)(\[\d+\]|\.[^.[]*)$/.exec(p);
  return m ? m[1] : '';
}

function escapeAttr(s: string) {
  return s.replace(/["\\]/g, '\\$&');
}

/* Finds the field on `form` nearest to what the API named and focuses it. */
export function placeError(form: HTMLElement | null, r: { status: number; json: unknown }, t: T): FormError {
  const e = (r.json ?? {}) as ApiError;
  if (!e.error) return { path: '', message: `${c(t, 'failed')} (HTTP ${r.status})` };
  let p = errorField(e);
  while (p) {
    const el = form?.querySelector(`[data-path="${escapeAttr(p)}"]`);
    if (el) {
      const input = el.querySelector('input, select, textarea') as HTMLElement | null;
      setTimeout(() => input?.focus(), 0);
      return { path: p, message: errorText(e) };
    }
    p = parentPath(p);
  }
  return { path: '', message: e.error.message };
}

let seq = 0;
function useId(prefix: string) {
  const [id] = useState(() => `${prefix}-${++seq}`);
  return id;
}

export type FieldAttrs = { id: string; 'aria-describedby'?: string; 'aria-invalid'?: boolean };

/* A labelled control with its error underneath. `path` is the JSON path of
 * the value in the request body, so an API error can find it. */
export function Field(props: {
  label: ComponentChildren;
  path: string;
  err: FormError;
  hint?: string;
  class?: string;
  children: (a: FieldAttrs) => JSX.Element;
}) {
  const id = useId('f');
  const mine = props.err && props.err.path === props.path ? props.err.message : '';
  const described = [props.hint ? id + '-hint' : '', mine ? id + '-err' : ''].filter(Boolean).join(' ');
  return (
    <div class={`field ${props.class ?? ''}${mine ? ' invalid' : ''}`} data-path={props.path}>
      <label for={id}>{props.label}</label>
      {props.children({ id, 'aria-describedby': described || undefined, 'aria-invalid': mine ? true : undefined })}
      {props.hint && <small id={id + '-hint'} class="hint">{props.hint}</small>}
      {mine && <p id={id + '-err'} class="field-error" role="alert">{mine}</p>}
    </div>
  );
}

/* A group of checkboxes (or any controls) under one legend, with its error. */
export function Group(props: {
  legend: ComponentChildren;
  path: string;
  err: FormError;
  class?: string;
  children: ComponentChildren;
}) {
  const id = useId('g');
  const mine = props.err && props.err.path === props.path ? props.err.message : '';
  return (
    <fieldset class={`group ${props.class ?? ''}${mine ? ' invalid' : ''}`} data-path={props.path}
      aria-describedby={mine ? id + '-err' : undefined}>
      <legend>{props.legend}</legend>
      {props.children}
      {mine && <p id={id + '-err'} class="field-error" role="alert">{mine}</p>}
    </fieldset>
  );
}

/* The form-level line: an error no field took, or "saved". */
export function FormStatus(props: { err: FormError; ok: string; t: T }) {
  if (props.err && props.err.path === '') return <p class="error" role="alert">{props.err.message}</p>;
  if (props.err) return <p class="error" role="alert">{c(props.t, 'notSaved')}</p>;
  if (props.ok) return <p class="ok" role="status">{props.ok}</p>;
  return null;
}

export function val(e: Event): string {
  return (e.target as HTMLInputElement).value;
}

export function checked(e: Event): boolean {
  return (e.target as HTMLInputElement).checked;
}

/* "a, b ,c" -> ["a", "b", "c"] */
export function splitList(s: string): string[] {
  return s.split(',').map((x) => x.trim()).filter((x) => x !== '');
}

/* A whole number from an input, or null when empty (so the API can say
 * what is wrong with anything else, it is sent as typed). */
export function intOrNull(s: string): number | string | null {
  const x = s.trim();
  if (x === '') return null;
  return /^-?\d+$/.test(x) ? Number(x) : x;
}

export function numOrNull(s: string): number | string | null {
  const x = s.trim().replace(',', '.');
  if (x === '') return null;
  return Number.isFinite(Number(x)) ? Number(x) : x;
}

/* GET a list: `key` of the body, [] on failure. */
export async function list<R>(path: string, key: string): Promise<R[]> {
  const r = await call<Record<string, R[]>>('GET', path);
  return r.status === 200 ? r.json[key] ?? [] : [];
}

/* A button whose action is asked about first: the first press shows
 * `question` with Yes and No, so nothing is lost to a stray click. */
export function ConfirmButton(props: {
  t: T;
  label: string;
  question: string;
  onYes: () => void;
  class?: string;
  'aria-label'?: string;
}) {
  const [asking, setAsking] = useState(false);
  const { t } = props;
  if (!asking)
    return (
      <button type="button" class={props.class ?? 'secondary'} onClick={() => setAsking(true)}
        aria-label={props['aria-label']}>{props.label}</button>
    );
  return (
    <span class="confirm" role="group">
      <span>{props.question}</span>
      <button type="button" class="danger" onClick={() => { setAsking(false); props.onYes(); }}>{c(t, 'yes')}</button>
      <button type="button" class="secondary" onClick={() => setAsking(false)}>{c(t, 'no')}</button>
    </span>
  );
}

/* Two-step delete: the first press asks, the second does it. */
export function DeleteButton(props: { t: T; name: string; onDelete: () => void }) {
  const { t } = props;
  return (
    <ConfirmButton t={t} class="danger" label={c(t, 'delete')} aria-label={`${c(t, 'delete')}: ${props.name}`}
      question={c(t, 'confirmDelete').replace('{name}', props.name)} onYes={props.onDelete} />
  );
}

/* A value from the API as the text of an input: '' for none. */
export function str(v: unknown): string {
  return v === undefined || v === null ? '' : String(v);
}

/* A form's values kept as one object; `set(k)` is the input's handler that
 * stores its value under `k`. */
export function useFields<F extends object>(init: F | (() => F)) {
  const [f, setF] = useState<F>(init);
  const set = (k: keyof F) => (e: Event) => setF({ ...f, [k]: val(e) });
  return [f, setF, set] as const;
}

/* A checkbox on a line of its own; `path` lets an API error find it (shown
 * under it when `err` is given), `hint` says more under the label. */
export function CheckField(props: {
  path: string;
  label: string;
  checked: boolean;
  onChange: (on: boolean) => void;
  hint?: string;
  err?: FormError;
}) {
  const id = useId('c');
  const mine = props.err && props.err.path === props.path ? props.err.message : '';
  const described = [props.hint ? id + '-hint' : '', mine ? id + '-err' : ''].filter(Boolean).join(' ');
  return (
    <div class={`field${mine ? ' invalid' : ''}`} data-path={props.path}>
      <label class="check">
        <input type="checkbox" checked={props.checked} onChange={(e) => props.onChange(checked(e))}
          aria-describedby={described || undefined} aria-invalid={mine ? true : undefined} /> {props.label}
      </label>
      {props.hint && <small id={id + '-hint'} class="hint">{props.hint}</small>}
      {mine && <p id={id + '-err'} class="field-error" role="alert">{mine}</p>}
    </div>
  );
}

type Named = { id: number; name: string };

/* A <select> of teams, agents or calendars by id, for a Field (spread its
 * attributes in); the first choice, `blank`, is the empty value. */
export function ItemSelect(props: FieldAttrs & { value: string; onChange: (e: Event) => void; blank: string; items: Named[] }) {
  const { value, onChange, blank, items, ...attrs } = props;
  return (
    <select {...attrs} value={value} onChange={onChange}>
      <option value="">{blank}</option>
      {items.map((x) => <option key={x.id} value={x.id}>{x.name}</option>)}
    </select>
  );
}

/* Checkboxes choosing some of `items` by id (a team's members, an agent's
 * teams), for a Group; `empty` is said when there is nothing to choose. */
export function IdChecks(props: { items: Named[]; value: number[]; onChange: (ids: number[]) => void; empty: string }) {
  const { value } = props;
  return (
    <>
      {props.items.length === 0 && <span class="muted">{props.empty}</span>}
      {props.items.map((x) => (
        <label key={x.id} class="check">
          <input type="checkbox" checked={value.includes(x.id)}
            onChange={(e) => props.onChange(checked(e) ? [...value, x.id] : value.filter((y) => y !== x.id))} /> {x.name}
        </label>
      ))}
    </>
  );
}
