// Click-to-call: a "Call" button beside a customer's phone number. POST
// /api/v1/calls rings the agent's own phone first, then dials the customer
// through the trunk with the caller ID they know (the number they called us
// on). The customer answering closes their open call-back tasks. Errors come
// from the API (no trunk, no registered phone, already on a call) and are
// shown beside the button.
import { useState } from 'preact/hooks';
import { call } from './api';
import { strings, type T } from './i18n';

const s = strings({
  ru: {
    call: 'Позвонить',
    callTitle: 'Сначала зазвонит ваш телефон, затем — клиента',
    placing: 'Звоним…',
    placed: 'Возьмите трубку: зазвонил ваш телефон',
    no_trunk: 'Исходящие звонки не настроены (нет SIP-транка)',
    no_phone: 'Ваш телефон не зарегистрирован',
    agent_busy: 'Вы уже разговариваете',
    failed: 'Не удалось позвонить',
  },
  en: {
    call: 'Call',
    callTitle: 'Your phone rings first, then the customer’s',
    placing: 'Calling…',
    placed: 'Pick up: your phone is ringing',
    no_trunk: 'Outbound calls are not set up (no SIP trunk)',
    no_phone: 'Your phone is not registered',
    agent_busy: 'You are on a call already',
    failed: 'The call could not be placed',
  },
});

type Known = 'no_trunk' | 'no_phone' | 'agent_busy';

export function CallButton(props: { t: T; to: string; contactId?: number; ticketId?: number; taskId?: number }) {
  const { t } = props;
  const [state, setState] = useState<'idle' | 'placing' | 'placed' | 'error'>('idle');
  const [message, setMessage] = useState('');
  const dial = async () => {
    setState('placing');
    setMessage('');
    const body: Record<string, unknown> = { to: props.to };
    if (props.contactId) body.contact_id = props.contactId;
    if (props.ticketId) body.ticket_id = props.ticketId;
    if (props.taskId) body.task_id = props.taskId;
    const r = await call<{ error?: { code: string; message: string } }>('POST', '/api/v1/calls', body);
    if (r.status === 202) {
      setState('placed');
      setMessage(s(t, 'placed'));
      return;
    }
    const code = r.json?.error?.code ?? '';
    setState('error');
    setMessage(['no_trunk', 'no_phone', 'agent_busy'].includes(code) ? s(t, code as Known) : r.json?.error?.message ?? s(t, 'failed'));
  };
  return (
    <span class="dial">
      <button type="button" class="dial-button" title={s(t, 'callTitle')} disabled={state === 'placing'} onClick={dial}>
        {state === 'placing' ? s(t, 'placing') : s(t, 'call')}
      </button>
      {message && (
        <span class={state === 'error' ? 'dial-note error' : 'dial-note'} role={state === 'error' ? 'alert' : 'status'}>
          {message}
        </span>
      )}
    </span>
  );
}
