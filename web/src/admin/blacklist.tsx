// The blacklist: phones, emails, messenger handles and contacts whose
// messages are stored but not routed nor answered; every entry says why.
import { useState } from 'preact/hooks';
import { call } from '../api';
import { strings, type T } from '../i18n';
import { useForm, useLoaded } from './crud';
import { c, DeleteButton, Field, FormStatus, placeError, useFields, type FormError } from './form';
import type { Lookups } from './types';

const s = strings({
  ru: {
    add: 'Добавить в чёрный список',
    kind: 'Что',
    'k.phone': 'телефон',
    'k.email': 'эл. почта',
    'k.handle': 'ID в мессенджере',
    'k.contact': 'клиент (номер карточки)',
    value: 'Значение',
    reason: 'Причина',
    by: 'добавил(а) {name}, {time}',
    none: 'Список пуст.',
    entries: 'Записи',
  },
  en: {
    add: 'Add to the blacklist',
    kind: 'What',
    'k.phone': 'phone',
    'k.email': 'email',
    'k.handle': 'messenger ID',
    'k.contact': 'customer (card number)',
    value: 'Value',
    reason: 'Reason',
    by: 'added by {name}, {time}',
    none: 'The list is empty.',
    entries: 'Entries',
  },
});

const KINDS = ['phone', 'email', 'handle', 'contact'] as const;
type Entry = { id: number; kind: (typeof KINDS)[number]; value: string; reason: string; added_by: number | null; created_at: string };

export function Blacklist(props: { t: T; lookups: Lookups }) {
  const { t, lookups } = props;
  const [items, load] = useLoaded<Entry>('/api/v1/blacklist', 'blacklist');
  const [f, setF, set] = useFields({ kind: 'phone', value: '', reason: '' });
  const frm = useForm(t);
  const err = frm.err;
  const [listErr, setListErr] = useState<FormError>(null);
  const [ok, setOk] = useState('');
  const add = frm.submit(
    () => {
      setOk('');
      return call('POST', '/api/v1/blacklist', f);
    },
    () => {
      setF({ ...f, value: '', reason: '' });
      setOk(c(t, 'saved'));
      load();
    },
  );
  const remove = async (id: number) => {
    const r = await call('DELETE', `/api/v1/blacklist/${id}`);
    setListErr(r.status === 200 ? null : placeError(null, r, t));
    load();
  };
  const who = (id: number | null) => lookups.agents.find((a) => a.id === id)?.name ?? c(t, 'none');
  return (
    <div>
      <form ref={frm.ref} class="editor" onSubmit={add} noValidate aria-label={s(t, 'add')}>
        <h3>{s(t, 'add')}</h3>
        <Field label={s(t, 'kind')} path="kind" err={err}>
          {(a) => (
            <select {...a} value={f.kind} onChange={set('kind')}>
              {KINDS.map((k) => <option key={k} value={k}>{s(t, `k.${k}`)}</option>)}
            </select>
          )}
        </Field>
        <Field label={s(t, 'value')} path="value" err={err}>
          {(a) => <input {...a} value={f.value} onInput={set('value')} />}
        </Field>
        <Field label={s(t, 'reason')} path="reason" err={err}>
          {(a) => <input {...a} value={f.reason} onInput={set('reason')} />}
        </Field>
        <FormStatus err={err} ok={ok} t={t} />
        <div class="row"><button type="submit">{c(t, 'add')}</button></div>
      </form>
      <FormStatus err={listErr} ok="" t={t} />
      {items !== null && items.length === 0 && <p class="muted">{s(t, 'none')}</p>}
      <ul class="items" aria-label={s(t, 'entries')}>
        {(items ?? []).map((x) => (
          <li key={x.id} class="item">
            <div class="what">
              <strong>{x.value}</strong> <span class="badge">{s(t, `k.${x.kind}`)}</span>
              <span>{x.reason}</span>
              <span class="muted">{s(t, 'by').replace('{name}', who(x.added_by)).replace('{time}', t.time(x.created_at))}</span>
            </div>
            <div class="buttons"><DeleteButton t={t} name={x.value} onDelete={() => remove(x.id)} /></div>
          </li>
        ))}
      </ul>
    </div>
  );
}
