// The shape most settings screens share: a list of items, each with Edit
// (and, where the API has them, ↑ ↓ and Delete) buttons, and an editor form
// that takes the list's place while one item is open. Each screen keeps its
// own fields and list lines; what is here is the state, the requests and the
// markup around them, so that every screen saves, reports errors and reads
// to a screen reader the same way.
import { Fragment, type ComponentChildren, type JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { call } from '../api';
import type { T } from '../i18n';
import { c, DeleteButton, FormStatus, list, placeError, type FormError } from './form';

export type Reply = { status: number; json: unknown };
type Item = { id: number; name: string };

/* A list the screen fetches itself (GET `path`, the array under `key`):
 * null until it is here; `load` fetches it again (settled once it is in). */
export function useLoaded<X>(path: string, key: string): [X[] | null, () => Promise<void>] {
  const [items, setItems] = useState<X[] | null>(null);
  const load = () => list<X>(path, key).then(setItems);
  useEffect(() => {
    void load();
  }, []);
  return [items, load];
}

/* Saves a whole document: PUT replaces item `id`, POST creates one. */
export function putOrPost(path: string, id: number | null | undefined, doc: unknown): Promise<Reply> {
  return id === null || id === undefined ? call('POST', path, doc) : call('PUT', `${path}/${id}`, doc);
}

/* For resources whose POST takes only some of the fields (agents, teams):
 * the first save POSTs `create`, every save then PATCHes `patch`. The new
 * id is kept, so when the PATCH is refused the next try does not create a
 * second copy. Returns the reply that failed, else the PATCH's. */
export function useCreateThenPatch(path: string, key: string, id0: number | null) {
  const [id, setId] = useState(id0);
  const save = async (create: unknown, patch: unknown): Promise<Reply> => {
    let target = id;
    if (target === null) {
      const r = await call<Record<string, { id: number }>>('POST', path, create);
      if (r.status !== 201) return r;
      target = r.json[key].id;
      setId(target);
    }
    return call('PATCH', `${path}/${target}`, patch);
  };
  return { id, save };
}

/* A form that saves through the API: the error the API gave, placed on the
 * field it names (see placeError), and whether a save is under way.
 * `submit(send, saved)` is the submit handler: `send` makes the requests
 * and returns the last reply; a 200 or 201 calls `saved`, anything else is
 * shown at its field, which gets the focus. */
export function useForm(t: T) {
  const [err, setErr] = useState<FormError>(null);
  const [busy, setBusy] = useState(false);
  const ref = useRef<HTMLFormElement>(null);
  const submit = (send: () => Promise<Reply>, saved: (r: Reply) => void) => async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErr(null);
    const r = await send();
    setBusy(false);
    if (r.status === 200 || r.status === 201) saved(r);
    else setErr(placeError(ref.current, r, t));
  };
  return { err, busy, ref, submit };
}

export type FormState = ReturnType<typeof useForm>;

/* The frame of an editor: a form named by its heading, the fields, the
 * form-level error, and Create (a new item) or Save, and Cancel. A save
 * that succeeds ends in `onSaved` (by default onDone(true)). `busy`
 * disables the submit button while a save is under way. */
export function EditorForm(props: {
  t: T;
  form: FormState;
  title: string;
  isNew?: boolean;
  class?: string;
  busy?: boolean;
  send: () => Promise<Reply>;
  onSaved?: (r: Reply) => void;
  onDone: (saved: boolean) => void;
  children: ComponentChildren;
}) {
  const { t, form } = props;
  const submit = form.submit(props.send, props.onSaved ?? (() => props.onDone(true)));
  return (
    <form ref={form.ref} class={props.class ?? 'editor'} onSubmit={submit} noValidate aria-label={props.title}>
      <h3>{props.title}</h3>
      {props.children}
      <FormStatus err={form.err} ok="" t={t} />
      <div class="row">
        <button type="submit" disabled={props.busy}>{props.isNew ? c(t, 'create') : c(t, 'save')}</button>
        <button type="button" class="secondary" onClick={() => props.onDone(false)}>{c(t, 'cancel')}</button>
      </div>
    </form>
  );
}

/* The state of a list screen: the item open in the editor ('new' for a
 * blank one), the "saved" line, the list's own error (a refused delete or
 * move), and whether the list is being fetched again after a save. `path`
 * is the collection in the API; `reload` fetches the list again after
 * anything that may have changed it. Until the list saved into is back, its
 * Edit buttons wait: opening the old copy of what was just saved and saving
 * it again would undo the save. */
export function useListScreen<X extends Item>(t: T, path: string, reload: () => Promise<void> | void) {
  const [editing, setEditing] = useState<X | 'new' | null>(null);
  const [ok, setOk] = useState('');
  const [err, setErr] = useState<FormError>(null);
  const [pending, setPending] = useState(false);
  const open = (x: X | 'new') => {
    setOk('');
    setEditing(x);
  };
  const done = (saved: boolean) => {
    setEditing(null);
    setOk(saved ? c(t, 'saved') : '');
    setPending(true);
    void Promise.resolve(reload()).finally(() => setPending(false));
  };
  const remove = async (id: number) => {
    const r = await call('DELETE', `${path}/${id}`);
    setErr(r.status === 200 ? null : placeError(null, r, t));
    reload();
  };
  /* The API orders by position; moving an item rewrites every position. */
  const move = async (items: X[], i: number, d: number) => {
    const order = [...items];
    const [x] = order.splice(i, 1);
    order.splice(i + d, 0, x);
    setErr(null);
    for (let k = 0; k < order.length; k++) {
      const r = await call('PUT', `${path}/${order[k].id}`, { ...order[k], position: (k + 1) * 10 });
      if (r.status !== 200) {
        setErr(placeError(null, r, t));
        break;
      }
    }
    reload();
  };
  return { editing, setEditing, ok, err, pending, open, done, remove, move };
}

export type ListState<X extends Item> = ReturnType<typeof useListScreen<X>>;

/* One line of the list: what the item is, and what follows its buttons. */
export type Row = { class?: string; data?: Record<`data-${string}`, number>; what: ComponentChildren; after?: ComponentChildren };

/* A list screen: the New button, the status line, the items (an <ol>
 * named `order`, with ↑ ↓, when the order matters) and, while one is open,
 * its editor instead. `editor` draws the editor for an item (null: a new
 * one); it is keyed by the item, so opening another starts afresh. */
export function ListScreen<X extends Item>(props: {
  t: T;
  screen: ListState<X>;
  items: X[] | null;
  newLabel: string;
  editor: (item: X | null, onDone: (saved: boolean) => void) => JSX.Element;
  row: (x: X) => Row;
  empty?: string;
  order?: string;
  deletable?: boolean;
  class?: string;
  listClass?: string;
}) {
  const { t, screen, items } = props;
  const editing = screen.editing;
  if (editing)
    return (
      <Fragment key={editing === 'new' ? 'new' : editing.id}>
        {props.editor(editing === 'new' ? null : editing, screen.done)}
      </Fragment>
    );
  const lines = (items ?? []).map((x, i) => {
    const row = props.row(x);
    return (
      <li key={x.id} class={row.class ?? 'item'} {...row.data}>
        <div class="what">{row.what}</div>
        <div class="buttons">
          <button type="button" class="secondary" onClick={() => screen.open(x)} disabled={screen.pending}
            aria-label={`${c(t, 'edit')}: ${x.name}`}>{c(t, 'edit')}</button>
          {props.order && items && (
            <>
              <button type="button" class="secondary" disabled={i === 0} onClick={() => screen.move(items, i, -1)}
                aria-label={`${c(t, 'up')}: ${x.name}`}>↑</button>
              <button type="button" class="secondary" disabled={i === items.length - 1} onClick={() => screen.move(items, i, 1)}
                aria-label={`${c(t, 'down')}: ${x.name}`}>↓</button>
            </>
          )}
          {props.deletable && <DeleteButton t={t} name={x.name} onDelete={() => screen.remove(x.id)} />}
        </div>
        {row.after}
      </li>
    );
  });
  const listClass = `items${props.listClass ? ' ' + props.listClass : ''}`;
  return (
    <div class={props.class}>
      <div class="row"><button type="button" onClick={() => screen.open('new')}>{props.newLabel}</button></div>
      <FormStatus err={screen.err} ok={screen.ok} t={t} />
      {items === null && <p class="muted">{c(t, 'loading')}</p>}
      {items !== null && items.length === 0 && props.empty && <p class="muted">{props.empty}</p>}
      {lines.length > 0 && (props.order ? <ol class={listClass} aria-label={props.order}>{lines}</ol> : <ul class={listClass}>{lines}</ul>)}
    </div>
  );
}
