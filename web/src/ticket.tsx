// One ticket: the conversation, the composer (reply in the customer's
// channel or another one they have, internal notes with @mentions,
// templates, files), the header controls (status, priority, team,
// assignee, tags, a task), the collision guard, and beside it the customer
// card with everything this customer ever sent in any channel.
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, listen, send, type Agent, type Contact, type Message, type Template, type Ticket } from './api';
import { strings, type Key, type T } from './i18n';
import { CallButton } from './dial';
import { ChannelIcon, priorityLabel, statusLabel } from './inbox';

// deleted_by: a call's recording past [sip] recordings_keep_days (the row stays, the file is gone)
type Attachment = { name: string; mime: string; url: string; size?: number; deleted_by?: string };
type Msg = Message & { attachments?: Attachment[]; channel_id?: number | null };
type Team = { id: number; name: string };
type Channel = { id: number; name: string; kind: string };
type Viewer = { agent_id: number; name: string; typing: boolean };
type Identity = { kind: string; address: string; channel_id?: number };

const MAX_FILE = 5 * 1024 * 1024;
const MAX_TOTAL = 7.5 * 1024 * 1024;

function base64(buf: ArrayBuffer): string {
  const bytes = new Uint8Array(buf);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

const s = strings({
  ru: { deleted: 'запись удалена по сроку хранения' },
  en: { deleted: 'recording deleted by retention' },
});

function Attachments(props: { t: T; list?: Attachment[] }) {
  if (!props.list || props.list.length === 0) return null;
  return (
    <ul class="attachments">
      {props.list.map((a, i) => (
        <li key={i}>
          {a.deleted_by ? (
            <span class="attachment-deleted">
              📎 {a.name} — {s(props.t, 'deleted')}
            </span>
          ) : a.mime?.startsWith('image/') && a.url?.startsWith('/') ? (
            <a href={a.url} target="_blank" rel="noopener">
              <img src={a.url} alt={a.name || ''} loading="lazy" />
            </a>
          ) : a.mime?.startsWith('audio/') && a.url?.startsWith('/') ? (
            // a call's recording or voicemail: played here, fetched in ranges only when played
            <span class="audio">
              <audio controls preload="none" src={a.url} aria-label={a.name || a.url} />
              <a href={a.url} download={a.name || true}>📎 {a.name || a.url}</a>
            </span>
          ) : (
            <a href={a.url} target="_blank" rel="noopener noreferrer" download={a.name || true}>
              📎 {a.name || a.url}
            </a>
          )}
        </li>
      ))}
    </ul>
  );
}

export function CustomerCard(props: { t: T; contact: Contact; version: number; current: number }) {
  const { t } = props;
  const [tickets, setTickets] = useState<Ticket[]>([]);
  const [messages, setMessages] = useState<Msg[]>([]);
  useEffect(() => {
    call<{ tickets: Ticket[]; messages: Msg[] }>('GET', `/api/v1/contacts/${props.contact.id}/timeline`).then((r) => {
      if (r.status === 200) {
        setTickets(r.json.tickets);
        setMessages(r.json.messages ?? []);
      }
    });
  }, [props.contact.id, props.version]);
  const c = props.contact;
  const byId = new Map(tickets.map((k) => [k.id, k]));
  const byNumber = (n: number) => tickets.find((k) => k.number === n)?.id;
  // one timeline: the latest messages of this customer's every ticket, any channel
  const recent = messages.filter((m) => m.direction !== 'system').slice(-20);
  return (
    <aside class="card" aria-label={t.t('card')}>
      <h3>
        {c.name || '—'} {c.vip && <span class="badge vip">{t.t('vip')}</span>}
      </h3>
      {c.identities?.length > 0 && (
        <dl>
          <dt>{t.t('identities')}</dt>
          {(c.identities as Identity[]).map((i) => (
            <dd key={i.kind + i.address}>
              <span class="kind">{t.t(('identity.' + i.kind) as Key) ?? i.kind}</span> {i.address}
              {i.kind === 'phone' && i.address.startsWith('+') && (
                <> <CallButton t={t} to={i.address} contactId={c.id} ticketId={byNumber(props.current)} /></>
              )}
            </dd>
          ))}
        </dl>
      )}
      {c.tags?.length > 0 && <p class="tags">{c.tags.map((x) => <span class="badge" key={x}>{x}</span>)}</p>}
      <h4>{t.t('tickets')}</h4>
      <ul class="history">
        {[...tickets].reverse().map((k) => (
          <li key={k.number} class={k.number === props.current ? 'current' : ''}>
            <ChannelIcon t={t} kind={k.channel_kind} /> #{k.number}{' '}
            <span class={`badge status-${k.status}`}>{statusLabel(t, k.status)}</span> {k.subject || ''}
          </li>
        ))}
      </ul>
      <h4>{t.t('timeline')}</h4>
      <ol class="timeline">
        {recent.map((m) => {
          const k = byId.get(m.ticket_id);
          return (
            <li key={m.id} class={`tm ${m.direction}`}>
              <div class="tm-head">
                <ChannelIcon t={t} kind={k?.channel_kind ?? null} /> #{k?.number ?? ''} <time>{t.time(m.created_at)}</time>
              </div>
              <p class="text">{m.text}</p>
            </li>
          );
        })}
      </ol>
    </aside>
  );
}

function TagEditor(props: { t: T; tags: string[]; onChange: (tags: string[]) => void }) {
  const { t } = props;
  const [text, setText] = useState('');
  const add = (e: Event) => {
    e.preventDefault();
    const v = text.trim();
    if (v && !props.tags.includes(v)) props.onChange([...props.tags, v]);
    setText('');
  };
  return (
    <form class="tags-editor" onSubmit={add}>
      {props.tags.map((x) => (
        <span class="badge tag" key={x}>
          {x}
          <button type="button" class="x" aria-label={`${t.t('removeTag')} ${x}`}
            onClick={() => props.onChange(props.tags.filter((y) => y !== x))}>×</button>
        </span>
      ))}
      <input name="tag" aria-label={t.t('addTag')} placeholder={t.t('addTag')} value={text} maxLength={64}
        onInput={(e) => setText((e.target as HTMLInputElement).value)} />
    </form>
  );
}

function TaskForm(props: { t: T; number: number; onDone: () => void }) {
  const { t } = props;
  const [title, setTitle] = useState('');
  const [kind, setKind] = useState('call_back');
  const [due, setDue] = useState(() => {
    const d = new Date(Date.now() + 3600 * 1000);
    d.setSeconds(0, 0);
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  });
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    setError('');
    const r = await call<{ error?: { message: string } }>('POST', '/api/v1/tasks', {
      title,
      kind,
      ticket_number: props.number,
      due_at: new Date(due).toISOString(),
    });
    if (r.status === 201) {
      setTitle('');
      props.onDone();
    } else setError(r.json.error?.message ?? t.t('sendFailed'));
  };
  return (
    <form class="task-form" onSubmit={submit} aria-label={t.t('newTask')}>
      <select name="kind" aria-label={t.t('taskKind')} value={kind}
        onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
        <option value="call_back">{t.t('callBack')}</option>
        <option value="follow_up">{t.t('followUp')}</option>
        <option value="other">{t.t('otherTask')}</option>
      </select>
      <input name="title" required maxLength={200} aria-label={t.t('taskTitle')} placeholder={t.t('taskTitle')}
        value={title} onInput={(e) => setTitle((e.target as HTMLInputElement).value)} />
      <input name="due" type="datetime-local" required aria-label={t.t('due')} value={due}
        onInput={(e) => setDue((e.target as HTMLInputElement).value)} />
      <button type="submit">{t.t('addTask')}</button>
      {error && <p class="error" role="alert">{error}</p>}
    </form>
  );
}

export function TicketView(props: { t: T; number: number; version: number; me: Agent; onChanged: () => void }) {
  const { t } = props;
  const [ticket, setTicket] = useState<Ticket & { tags?: string[]; channel_id?: number } | null>(null);
  const [contact, setContact] = useState<Contact | null>(null);
  const [messages, setMessages] = useState<Msg[]>([]);
  const [templates, setTemplates] = useState<Template[]>([]);
  const [agents, setAgents] = useState<(Agent & { active?: boolean })[]>([]);
  const [teams, setTeams] = useState<Team[]>([]);
  const [channels, setChannels] = useState<Channel[]>([]);
  const [viewers, setViewers] = useState<Viewer[]>([]);
  const [typingSeen, setTypingSeen] = useState<Record<number, number>>({});
  const [text, setText] = useState('');
  const [files, setFiles] = useState<File[]>([]);
  const [via, setVia] = useState(0);
  const [kind, setKind] = useState<'reply' | 'note'>('reply');
  const [error, setError] = useState('');
  const [showTask, setShowTask] = useState(false);
  const box = useRef<HTMLTextAreaElement>(null);
  const lastTyping = useRef(0);
  const load = async () => {
    const r = await call<{ ticket: Ticket; contact: Contact | null; messages: Msg[] }>(
      'GET',
      `/api/v1/tickets/${props.number}`,
    );
    if (r.status === 200) {
      setTicket(r.json.ticket);
      setContact(r.json.contact);
      setMessages(r.json.messages);
    }
  };
  useEffect(() => {
    load();
  }, [props.number, props.version]);
  useEffect(() => {
    setVia(0);
    setFiles([]);
    setViewers([]);
    send({ type: 'viewing', ticket_number: props.number });
    const stop = listen((e) => {
      if (e.type === 'stream.open') send({ type: 'viewing', ticket_number: props.number });
      if (e.type === 'ticket.viewers' && e.data?.ticket_number === props.number) {
        setViewers(e.data.viewers);
        const now = Date.now();
        setTypingSeen((m) => {
          const c = { ...m };
          for (const v of e.data.viewers as Viewer[]) if (v.typing) c[v.agent_id] = now;
          return c;
        });
      }
    });
    return () => {
      stop();
      send({ type: 'viewing', ticket_number: null });
    };
  }, [props.number]);
  useEffect(() => {
    call<{ templates: Template[] }>('GET', '/api/v1/templates').then((r) => {
      if (r.status === 200) setTemplates(r.json.templates);
    });
    call<{ agents: Agent[] }>('GET', '/api/v1/agents').then((r) => {
      if (r.status === 200) setAgents(r.json.agents);
    });
    call<{ teams: Team[] }>('GET', '/api/v1/teams').then((r) => {
      if (r.status === 200) setTeams(r.json.teams);
    });
    call<{ channels: Channel[] }>('GET', '/api/v1/channels').then((r) => {
      if (r.status === 200) setChannels(r.json.channels);
    });
  }, []);
  // typing marks expire after 6 s unless renewed
  const [, tick] = useState(0);
  useEffect(() => {
    const id = setInterval(() => tick((x) => x + 1), 2000);
    return () => clearInterval(id);
  }, []);
  const others = viewers.filter((v) => v.agent_id !== props.me.id);
  const typing = others.filter((v) => v.typing && Date.now() - (typingSeen[v.agent_id] ?? 0) < 6000);

  const after = (r: { status: number; json: any }) => {
    if (r.status === 201 || r.status === 200) {
      load();
      props.onChanged();
      return true;
    }
    setError(r.json?.error?.message ?? t.t('sendFailed'));
    return false;
  };
  const sendTemplate = async (id: number) => {
    if (!id) return;
    setError('');
    after(await call('POST', `/api/v1/tickets/${props.number}/messages`, { template_id: id, kind }));
  };
  const patch = async (body: Record<string, unknown>) => {
    setError('');
    after(await call('PATCH', `/api/v1/tickets/${props.number}`, body));
  };
  const resolve = () => patch({ status: 'resolved' });
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const tag = (e.target as HTMLElement).tagName;
      if (tag === 'TEXTAREA' || tag === 'INPUT' || tag === 'SELECT') return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === 'r' || e.key === 'n') {
        setKind(e.key === 'r' ? 'reply' : 'note');
        box.current?.focus();
        e.preventDefault();
      } else if (e.key === 'e') {
        resolve();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });
  const onType = (v: string) => {
    setText(v);
    const now = Date.now();
    if (now - lastTyping.current > 3000) {
      lastTyping.current = now;
      send({ type: 'typing', ticket_number: props.number });
    }
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!text.trim() && files.length === 0) return;
    setError('');
    const short = text.trim().match(/^\/(\S+)$/);
    const tpl = short && files.length === 0 ? templates.find((x) => x.shortcut === short[1]) : undefined;
    if (tpl) {
      if (after(await call('POST', `/api/v1/tickets/${props.number}/messages`, { template_id: tpl.id, kind }))) setText('');
      return;
    }
    const body: Record<string, unknown> = { kind };
    if (text.trim()) body.text = text;
    if (kind === 'reply' && via) body.channel_id = via;
    if (files.length) {
      body.attachments = await Promise.all(
        files.map(async (f) => ({ name: f.name, mime: f.type || 'application/octet-stream', data: base64(await f.arrayBuffer()) })),
      );
    }
    if (after(await call('POST', `/api/v1/tickets/${props.number}/messages`, body))) {
      setText('');
      setFiles([]);
    }
  };
  const pickFiles = (list: FileList | null) => {
    const picked = Array.from(list ?? []);
    const big = picked.find((f) => f.size > MAX_FILE);
    if (big) {
      setError(`${big.name}: ${t.t('fileTooBig')}`);
      return;
    }
    const all = [...files, ...picked].slice(0, 10);
    // they travel base64-encoded in one request the server caps at 8 MiB
    if (all.reduce((n, f) => n + Math.ceil(f.size / 3) * 4, 0) > MAX_TOTAL) {
      setError(t.t('filesTooBig'));
      return;
    }
    setFiles(all);
  };
  if (!ticket) return <section class="conversation" />;
  const card = contact ? <CustomerCard t={t} contact={contact} version={props.version} current={ticket.number} /> : null;
  const due = ticket.sla?.due ?? {};
  const state = ticket.sla?.state ?? {};
  const clocks: [string, Key][] = [['first_response', 'dueFirst'], ['next_response', 'dueNext'], ['resolution', 'dueResolution']];
  // channels the customer can be answered on: their API-channel identities and their web chat
  const ids = (contact?.identities ?? []) as Identity[];
  const reachable = channels.filter(
    (c) =>
      (c.kind === 'api' && ids.some((i) => i.kind === 'external' && i.channel_id === c.id)) ||
      (c.kind === 'webchat' && ids.some((i) => i.kind === 'webchat')),
  );
  const active = agents.filter((a) => a.active !== false);
  // @mentions: suggest colleagues while a note's last word starts with @
  const mention = text.match(/(?:^|\s)@([^\s@]*)$/)?.[1]?.toLowerCase() ?? null;
  const handle = (a: Agent) => a.email.split('@')[0];
  const suggestions =
    mention === null
      ? []
      : active
          .filter((a) => a.id !== props.me.id)
          .filter((a) => handle(a).toLowerCase().startsWith(mention) || a.name.toLowerCase().startsWith(mention))
          .slice(0, 6);
  return (
    <div class="detail">
      <section class="conversation" aria-label={`#${ticket.number}`}>
        <header>
          <h2>
            <ChannelIcon t={t} kind={ticket.channel_kind} /> #{ticket.number} {ticket.contact?.name || ''}
          </h2>
          {others.length > 0 && (
            <p class="viewers" role="status">
              {typing.length > 0
                ? `${typing.map((v) => v.name).join(', ')} ${t.t('isTyping')}`
                : `${others.map((v) => v.name).join(', ')} ${t.t('alsoViewing')}`}
            </p>
          )}
          <div class="meta">
            <select aria-label={t.t('status')} name="status" value={ticket.status}
              onChange={(e) => patch({ status: (e.target as HTMLSelectElement).value })}>
              {['new', 'open', 'pending', 'resolved', 'closed'].map((s) => (
                <option value={s} key={s}>{statusLabel(t, s)}</option>
              ))}
            </select>
            <select aria-label={t.t('priority')} name="priority" value={ticket.priority}
              onChange={(e) => patch({ priority: (e.target as HTMLSelectElement).value })}>
              {['low', 'normal', 'high', 'urgent'].map((p) => (
                <option value={p} key={p}>{priorityLabel(t, p)}</option>
              ))}
            </select>
            <select aria-label={t.t('team')} name="team" value={ticket.team_id ?? ''}
              onChange={(e) => {
                const v = (e.target as HTMLSelectElement).value;
                patch({ team_id: v ? Number(v) : null });
              }}>
              <option value="">{t.t('noTeam')}</option>
              {teams.map((x) => (
                <option value={x.id} key={x.id}>{x.name}</option>
              ))}
            </select>
            <select aria-label={t.t('assignee')} name="assignee" value={ticket.assignee_id ?? ''}
              onChange={(e) => {
                const v = (e.target as HTMLSelectElement).value;
                patch({ assignee_id: v ? Number(v) : null });
              }}>
              <option value="">{t.t('nobody')}</option>
              {active.map((a) => (
                <option value={a.id} key={a.id}>{a.name}</option>
              ))}
            </select>
            {ticket.assignee_id !== props.me.id && (
              <button type="button" onClick={() => patch({ assignee_id: props.me.id })}>{t.t('takeIt')}</button>
            )}
            <button type="button" onClick={resolve} disabled={ticket.status === 'resolved'}>{t.t('resolve')}</button>
            <button type="button" aria-expanded={showTask} onClick={() => setShowTask(!showTask)}>{t.t('newTask')}</button>
          </div>
          <TagEditor t={t} tags={ticket.tags ?? []} onChange={(tags) => patch({ tags })} />
          <div class="meta">
            {clocks.map(([c, label]) =>
              due[c] || state[c] ? (
                <span class={`sla sla-${state[c] || 'running'}`} key={c}>
                  {t.t(label)} {t.time(due[c] ?? null)} {state[c] ? `(${t.t(state[c] as Key)})` : ''}
                </span>
              ) : null,
            )}
          </div>
          {showTask && <TaskForm t={t} number={ticket.number} onDone={() => setShowTask(false)} />}
        </header>
        <ol class="messages">
          {messages.map((m) => (
            <li key={m.id} class={`message ${m.direction}`}>
              <div class="author">
                {m.direction === 'in' ? t.t('customer') : m.author && 'name' in m.author ? m.author.name : t.t('system')}
                {m.direction === 'note' && <span class="badge">{t.t('note')}</span>}
                <time>{t.time(m.created_at)}</time>
                {m.delivery_status && m.direction === 'out' && (
                  <span class={`delivery delivery-${m.delivery_status}`}>
                    {t.t(('delivery.' + m.delivery_status) as Key) ?? m.delivery_status}
                  </span>
                )}
              </div>
              {m.text && <p class="text">{m.text}</p>}
              <Attachments t={t} list={m.attachments} />
            </li>
          ))}
        </ol>
        <form class="composer" onSubmit={submit}>
          <div class="tabs" role="tablist">
            <button type="button" role="tab" aria-selected={kind === 'reply'} onClick={() => setKind('reply')}>{t.t('reply')}</button>
            <button type="button" role="tab" aria-selected={kind === 'note'} onClick={() => setKind('note')}>{t.t('note')}</button>
            {kind === 'reply' && reachable.length > 1 && (
              <select aria-label={t.t('via')} name="via" value={via}
                onChange={(e) => setVia(Number((e.target as HTMLSelectElement).value))}>
                <option value={0}>{t.t('viaLast')}</option>
                {reachable.map((c) => (
                  <option value={c.id} key={c.id}>{c.name}</option>
                ))}
              </select>
            )}
          </div>
          <textarea ref={box} name="text" value={text} aria-label={kind === 'reply' ? t.t('reply') : t.t('note')}
            placeholder={kind === 'reply' ? t.t('replyPlaceholder') : t.t('notePlaceholder')}
            onInput={(e) => onType((e.target as HTMLTextAreaElement).value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) submit(e);
            }} />
          {kind === 'note' && mention !== null && suggestions.length > 0 && (
            <ul class="mentions" role="listbox" aria-label={t.t('mention')}>
              {suggestions.map((a) => (
                <li key={a.id} role="option" aria-selected={false}>
                  <button type="button" class="link" onClick={() => {
                    setText(text.replace(/@[^\s@]*$/, '@' + handle(a) + ' '));
                    box.current?.focus();
                  }}>@{handle(a)} — {a.name}</button>
                </li>
              ))}
            </ul>
          )}
          {files.length > 0 && (
            <ul class="picked">
              {files.map((f, i) => (
                <li key={i}>
                  📎 {f.name}
                  <button type="button" class="x" aria-label={`${t.t('removeFile')} ${f.name}`}
                    onClick={() => setFiles(files.filter((_, j) => j !== i))}>×</button>
                </li>
              ))}
            </ul>
          )}
          {error && <p class="error" role="alert">{error}</p>}
          <div class="actions">
            <label class="file">
              {t.t('attach')}
              <input type="file" multiple name="files" onChange={(e) => {
                pickFiles((e.target as HTMLInputElement).files);
                (e.target as HTMLInputElement).value = '';
              }} />
            </label>
            {templates.length > 0 && (
              <select aria-label={t.t('template')} name="template" value=""
                onChange={(e) => sendTemplate(Number((e.target as HTMLSelectElement).value))}>
                <option value="">{t.t('template')}</option>
                {templates.map((x) => (
                  <option value={x.id} key={x.id}>{x.shortcut ? `/${x.shortcut} — ${x.name}` : x.name}</option>
                ))}
              </select>
            )}
            <button type="submit">{t.t('send')}</button>
          </div>
        </form>
      </section>
      {card}
    </div>
  );
}
