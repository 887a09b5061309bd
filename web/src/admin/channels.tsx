// Channels: the website chat (greeting, colour, pre-chat form, and the
// snippet to paste into the site) and API channels (callback URL, inbound
// URL, a new signing secret shown once).
import { useRef, useState } from 'preact/hooks';
import { call } from '../api';
import { strings, type T } from '../i18n';
import { EditorForm, ListScreen, useForm, useListScreen, useLoaded } from './crud';
import { c, CheckField, ConfirmButton, Field, FormStatus, placeError, useFields, type FormError } from './form';

const s = strings({
  ru: {
    newChannel: 'Новый канал',
    editChannel: 'Канал {name}',
    kind: 'Тип',
    'kind.webchat': 'чат на сайте',
    'kind.api': 'API-канал',
    'kind.phone': 'телефон (звонки на обращениях)',
    callback: 'URL для ответов (callback)',
    greeting: 'Приветствие в чате',
    color: 'Цвет кнопки',
    prechat: 'Спрашивать имя и контакты перед чатом',
    active: 'Включён',
    inactive: 'выключен',
    snippet: 'Код для сайта: вставьте перед </body>',
    copy: 'Копировать',
    copied: 'Скопировано',
    inbound: 'Адрес для входящих сообщений',
    rotate: 'Новый секрет подписи',
    rotateAsk: 'Старый секрет сразу перестанет работать. Создать новый?',
    secret: 'Секрет подписи — показывается один раз, сохраните его',
    secretHint: 'Подпись: X-Switchboard-Signature: sha256=<HMAC-SHA256 тела с этим секретом>',
  },
  en: {
    newChannel: 'New channel',
    editChannel: 'Channel {name}',
    kind: 'Type',
    'kind.webchat': 'website chat',
    'kind.api': 'API channel',
    'kind.phone': 'phone (calls on tickets)',
    callback: 'Callback URL for replies',
    greeting: 'Chat greeting',
    color: 'Button colour',
    prechat: 'Ask for name and contacts before the chat',
    active: 'Active',
    inactive: 'inactive',
    snippet: 'Code for the website: paste it before </body>',
    copy: 'Copy',
    copied: 'Copied',
    inbound: 'Inbound message URL',
    rotate: 'New signing secret',
    rotateAsk: 'The old secret stops working at once. Make a new one?',
    secret: 'Signing secret — shown only once, keep it',
    secretHint: 'Signature: X-Switchboard-Signature: sha256=<HMAC-SHA256 of the body with this secret>',
  },
});

type Channel = {
  id: number;
  kind: 'api' | 'webchat' | 'phone';
  name: string;
  callback_url: string | null;
  active: boolean;
  config: Record<string, unknown>;
  widget_snippet?: string;
  inbound_url?: string;
  secret?: string;
};

/* A read-only text with a Copy button (clipboard, else selected for Ctrl+C). */
export function Copyable(props: { t: T; label: string; text: string; rows?: number; name?: string }) {
  const { t } = props;
  const [done, setDone] = useState(false);
  const box = useRef<HTMLTextAreaElement>(null);
  const copy = async () => {
    box.current?.select();
    try {
      await navigator.clipboard.writeText(props.text);
      setDone(true);
    } catch {
      setDone(document.execCommand?.('copy') ?? false);
    }
  };
  return (
    <Field label={props.label} path="" err={null} class="copyable">
      {(a) => (
        <div class="copy-row">
          <textarea {...a} ref={box} name={props.name} readOnly rows={props.rows ?? 2} value={props.text} />
          <button type="button" class="secondary" onClick={copy}>{s(t, 'copy')}</button>
          <span role="status" class="ok">{done ? s(t, 'copied') : ''}</span>
        </div>
      )}
    </Field>
  );
}

function Secret(props: { t: T; channel: Channel }) {
  const { t } = props;
  const [secret, setSecret] = useState('');
  const [err, setErr] = useState<FormError>(null);
  const rotate = async () => {
    const r = await call<{ secret: string }>('POST', `/api/v1/channels/${props.channel.id}/secret`);
    if (r.status === 200) setSecret(r.json.secret);
    else setErr(placeError(null, r, t));
  };
  return (
    <div class="secret">
      {secret && <Copyable t={t} label={s(t, 'secret')} text={secret} rows={1} name="secret" />}
      <ConfirmButton t={t} label={s(t, 'rotate')} aria-label={`${s(t, 'rotate')}: ${props.channel.name}`}
        question={s(t, 'rotateAsk')} onYes={rotate} />
      <FormStatus err={err} ok="" t={t} />
    </div>
  );
}

function ChannelEditor(props: { t: T; channel: Channel | null; onDone: (saved: boolean) => void }) {
  const { t } = props;
  const ch = props.channel;
  const cfg = ch?.config ?? {};
  const [f, setF, set] = useFields({
    kind: ch?.kind ?? 'webchat',
    name: ch?.name ?? '',
    callback: ch?.callback_url ?? '',
    greeting: typeof cfg.greeting === 'string' ? cfg.greeting : '',
    color: typeof cfg.color === 'string' ? cfg.color : '#1f5fbf',
    prechat: cfg.prechat === true,
    active: ch?.active ?? true,
  });
  const [created, setCreated] = useState<Channel | null>(null);
  const frm = useForm(t);
  const err = frm.err;
  const send = () => {
    // Keys of the config this form does not show are kept.
    const config: Record<string, unknown> = { ...cfg };
    if (f.kind === 'webchat') {
      if (f.greeting) config.greeting = f.greeting;
      else delete config.greeting;
      config.color = f.color;
      config.prechat = f.prechat;
    }
    const body: Record<string, unknown> = { name: f.name, config };
    if (f.kind === 'api') body.callback_url = f.callback.trim() || null;
    if (ch) {
      body.active = f.active;
      return call('PATCH', `/api/v1/channels/${ch.id}`, body);
    }
    body.kind = f.kind;
    if (body.callback_url === null) delete body.callback_url;
    return call('POST', '/api/v1/channels', body);
  };
  /* A new API channel's secret is shown once, before going back. */
  const saved = (r: { json: unknown }) => {
    const made = (r.json as { channel?: Channel }).channel;
    if (!ch && made?.secret) setCreated(made);
    else props.onDone(true);
  };
  if (created)
    return (
      <div class="editor">
        <h3>{s(t, 'editChannel').replace('{name}', created.name)}</h3>
        <Copyable t={t} label={s(t, 'secret')} text={created.secret ?? ''} rows={1} name="secret" />
        {created.inbound_url && <Copyable t={t} label={s(t, 'inbound')} text={created.inbound_url} rows={1} />}
        <p class="hint">{s(t, 'secretHint')}</p>
        <div class="row"><button type="button" onClick={() => props.onDone(true)}>{c(t, 'saved')} ✓</button></div>
      </div>
    );
  const title = ch ? s(t, 'editChannel').replace('{name}', ch.name) : s(t, 'newChannel');
  return (
    <EditorForm t={t} form={frm} title={title} isNew={!ch} send={send} onSaved={saved} onDone={props.onDone}>
      <Field label={s(t, 'kind')} path="kind" err={err}>
        {(a) => (
          <select {...a} value={f.kind} onChange={set('kind')} disabled={ch !== null}>
            <option value="webchat">{s(t, 'kind.webchat')}</option>
            <option value="api">{s(t, 'kind.api')}</option>
            {ch?.kind === 'phone' && <option value="phone">{s(t, 'kind.phone')}</option>}
          </select>
        )}
      </Field>
      <Field label={c(t, 'name')} path="name" err={err}>{(a) => <input {...a} value={f.name} onInput={set('name')} />}</Field>
      {f.kind === 'api' && (
        <Field label={s(t, 'callback')} path="callback_url" err={err}>
          {(a) => <input {...a} type="url" value={f.callback} onInput={set('callback')} placeholder="https://" />}
        </Field>
      )}
      {f.kind === 'webchat' && (
        <>
          <Field label={s(t, 'greeting')} path="config.greeting" err={err}>
            {(a) => <input {...a} value={f.greeting} onInput={set('greeting')} />}
          </Field>
          <Field label={s(t, 'color')} path="config.color" err={err}>
            {(a) => <input {...a} type="color" value={f.color} onInput={set('color')} />}
          </Field>
          <CheckField path="config.prechat" label={s(t, 'prechat')} checked={f.prechat} onChange={(prechat) => setF({ ...f, prechat })} />
        </>
      )}
      {ch && <CheckField path="active" label={s(t, 'active')} checked={f.active} onChange={(active) => setF({ ...f, active })} />}
    </EditorForm>
  );
}

export function Channels(props: { t: T }) {
  const { t } = props;
  const [channels, load] = useLoaded<Channel>('/api/v1/channels', 'channels');
  const screen = useListScreen<Channel>(t, '/api/v1/channels', load);
  return (
    <ListScreen t={t} screen={screen} items={channels} newLabel={s(t, 'newChannel')} listClass="cards"
      editor={(x, onDone) => <ChannelEditor t={t} channel={x} onDone={onDone} />}
      row={(x) => ({
        class: `item channel${x.active ? '' : ' off'}`,
        data: { 'data-channel': x.id },
        what: (
          <>
            <strong>{x.name}</strong> <span class="badge">{s(t, `kind.${x.kind}`)}</span>
            {!x.active && <span class="badge">{s(t, 'inactive')}</span>}
            {x.kind === 'api' && x.callback_url && <span class="muted">{s(t, 'callback')}: {x.callback_url}</span>}
          </>
        ),
        after: (
          <>
            {x.widget_snippet && (
              <Copyable t={t} label={`${s(t, 'snippet')} (${x.name})`} text={x.widget_snippet} name={`snippet-${x.id}`} />
            )}
            {x.inbound_url && <Copyable t={t} label={`${s(t, 'inbound')} (${x.name})`} text={x.inbound_url} rows={1} />}
            {x.kind === 'api' && <Secret t={t} channel={x} />}
          </>
        ),
      })} />
  );
}
