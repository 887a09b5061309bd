// Webhooks: in Switchboard a webhook is a rule's action. This screen lists
// the rules that call one and their URLs, the recent deliveries from the
// outbox (status, attempts, last error), and the secret they are signed
// with (shown on request; a new one can be made).
import { useEffect, useState } from 'preact/hooks';
import { call } from '../api';
import { strings, type T } from '../i18n';
import { useLoaded } from './crud';
import { c, ConfirmButton, FormStatus, placeError, type FormError } from './form';
import { Copyable } from './channels';
import type { RuleDoc } from './rules';

const s = strings({
  ru: {
    rules: 'Правила с вебхуками',
    noRules: 'Ни одно правило не вызывает вебхук. Добавьте действие «Вызвать вебхук» в правило.',
    openRule: 'Открыть правило',
    deliveries: 'Последние отправки',
    noDeliveries: 'Отправок пока не было.',
    refresh: 'Обновить',
    url: 'URL',
    rule: 'Правило',
    ticket: 'Обращение',
    status: 'Статус',
    attempts: 'Попыток',
    lastError: 'Последняя ошибка',
    when: 'Когда',
    'st.pending': 'ожидает',
    'st.sent': 'доставлено',
    'st.failed': 'не доставлено',
    secret: 'Секрет подписи вебхуков',
    secretHint: 'Запросы подписаны заголовком X-Switchboard-Signature: sha256=<HMAC-SHA256 тела с этим секретом>.',
    show: 'Показать секрет',
    rotate: 'Новый секрет',
    rotateAsk: 'Получатели со старым секретом перестанут принимать вебхуки. Создать новый?',
  },
  en: {
    rules: 'Rules with webhooks',
    noRules: 'No rule calls a webhook. Add the “Call webhook” action to a rule.',
    openRule: 'Open rule',
    deliveries: 'Recent deliveries',
    noDeliveries: 'Nothing has been sent yet.',
    refresh: 'Refresh',
    url: 'URL',
    rule: 'Rule',
    ticket: 'Ticket',
    status: 'Status',
    attempts: 'Attempts',
    lastError: 'Last error',
    when: 'When',
    'st.pending': 'pending',
    'st.sent': 'sent',
    'st.failed': 'failed',
    secret: 'Webhook signing secret',
    secretHint: 'Requests are signed with X-Switchboard-Signature: sha256=<HMAC-SHA256 of the body with this secret>.',
    show: 'Show secret',
    rotate: 'New secret',
    rotateAsk: 'Receivers that know the old secret will reject webhooks. Make a new one?',
  },
});

type Delivery = {
  id: number;
  url: string;
  rule_id: number | null;
  ticket_number: number | null;
  status: 'pending' | 'sent' | 'failed';
  attempts: number;
  last_error: string | null;
  next_at: string | null;
  created_at: string;
  updated_at: string;
};

export function Webhooks(props: { t: T; onOpenRule: (id: number) => void }) {
  const { t } = props;
  const [rules] = useLoaded<RuleDoc>('/api/v1/rules', 'rules');
  const [deliveries, setDeliveries] = useState<Delivery[] | null>(null);
  const [secret, setSecret] = useState('');
  const [err, setErr] = useState<FormError>(null);
  const loadDeliveries = () =>
    call<{ deliveries: Delivery[] }>('GET', '/api/v1/webhooks/deliveries?limit=50').then((r) => {
      if (r.status === 200) setDeliveries(r.json.deliveries);
      else setErr(placeError(null, r, t));
    });
  useEffect(() => {
    loadDeliveries();
  }, []);
  const secretCall = async (method: 'GET' | 'POST') => {
    const r = await call<{ secret: string }>(method, '/api/v1/webhooks/secret');
    if (r.status === 200) setSecret(r.json.secret);
    else setErr(placeError(null, r, t));
  };
  const hooks = (rules ?? []).flatMap((r) =>
    (Array.isArray(r.actions) ? r.actions : []).filter((a: any) => a.type === 'webhook').map((a: any) => ({ rule: r, url: String(a.url) })),
  );
  const ruleName = (id: number | null) => (rules ?? []).find((r) => r.id === id)?.name ?? (id === null ? c(t, 'none') : `#${id}`);
  return (
    <div class="webhooks">
      <FormStatus err={err} ok="" t={t} />
      <h3>{s(t, 'rules')}</h3>
      {rules !== null && hooks.length === 0 && <p class="muted">{s(t, 'noRules')}</p>}
      <ul class="items hooks" aria-label={s(t, 'rules')}>
        {hooks.map((h, i) => (
          <li key={i} class="item">
            <div class="what">
              <strong>{h.rule.name}</strong>
              <code class="url">{h.url}</code>
            </div>
            <div class="buttons">
              <button type="button" class="secondary" onClick={() => props.onOpenRule(h.rule.id)}
                aria-label={`${s(t, 'openRule')}: ${h.rule.name}`}>{s(t, 'openRule')}</button>
            </div>
          </li>
        ))}
      </ul>
      <h3>{s(t, 'secret')}</h3>
      <p class="hint">{s(t, 'secretHint')}</p>
      {secret && <Copyable t={t} label={s(t, 'secret')} text={secret} rows={1} name="webhook-secret" />}
      <div class="row">
        {!secret && <button type="button" class="secondary" onClick={() => secretCall('GET')}>{s(t, 'show')}</button>}
        <ConfirmButton t={t} label={s(t, 'rotate')} question={s(t, 'rotateAsk')} onYes={() => secretCall('POST')} />
      </div>
      <h3>{s(t, 'deliveries')}</h3>
      <div class="row"><button type="button" class="secondary" onClick={loadDeliveries}>{s(t, 'refresh')}</button></div>
      {deliveries !== null && deliveries.length === 0 && <p class="muted">{s(t, 'noDeliveries')}</p>}
      {deliveries !== null && deliveries.length > 0 && (
        <ul class="items deliveries" aria-label={s(t, 'deliveries')}>
          {deliveries.map((d) => (
            <li key={d.id} class={`item delivery st-${d.status}`}>
              <div class="what">
                <span><span class={`badge st-${d.status}`}>{s(t, `st.${d.status}`)}</span> {t.time(d.updated_at)}</span>
                <code class="url">{d.url}</code>
                <span class="muted">
                  {s(t, 'rule')}: {ruleName(d.rule_id)}
                  {d.ticket_number !== null ? ` · ${s(t, 'ticket')} #${d.ticket_number}` : ''} · {s(t, 'attempts')}: {d.attempts}
                </span>
                {d.last_error && <span class="error">{s(t, 'lastError')}: {d.last_error}</span>}
              </div>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
