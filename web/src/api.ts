// The REST API and the live stream, as the workspace uses them. Cookie
// sessions: writes carry the CSRF token from the sb_csrf cookie.
export type Agent = { id: number; name: string; email: string; role: string; language: string };
export type Ticket = {
  id: number;
  number: number;
  subject: string | null;
  status: string;
  priority: string;
  team_id: number | null;
  assignee_id: number | null;
  updated_at: string;
  last_message_at: string | null;
  contact: { id: number; name: string | null };
  channel_kind: string | null;
  sla?: { due: Record<string, string | null>; state: Record<string, string> };
};
export type Message = {
  id: number;
  ticket_id: number;
  direction: 'in' | 'out' | 'note' | 'system';
  text: string;
  author: { id: number; name: string } | null;
  delivery_status: string | null;
  created_at: string;
};

function csrf(): string {
  const m = document.cookie.match(/(?:^|;\s*)sb_csrf=([0-9a-f]+)/);
  return m ? m[1] : '';
}

export async function call<R>(method: string, path: string, body?: unknown): Promise<{ status: number; json: R }> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['X-CSRF-Token'] = csrf();
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : {}) as R };
}

export type StreamEvent = { type: string; data: any };

/* The agents' stream, reconnecting with backoff; `onState` tells whether it
 * is live. */
export function openStream(
  onEvent: (e: StreamEvent) => void,
  onState: (live: boolean) => void,
  onSender?: (fn: ((msg: unknown) => void) | null) => void,
): () => void {
  let ws: WebSocket | null = null;
  let closed = false;
  let delay = 500;
  const connect = () => {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(`${proto}//${location.host}/api/v1/stream`);
    ws.onopen = () => {
      delay = 500;
      onState(true);
      const open = ws;
      onSender?.((msg) => {
        if (open && open.readyState === WebSocket.OPEN) open.send(JSON.stringify(msg));
      });
      onEvent({ type: 'stream.open', data: {} });
    };
    ws.onmessage = (m) => {
      try {
        const e = JSON.parse(m.data as string);
        if (e && typeof e.type === 'string') onEvent(e);
      } catch {
        /* not ours */
      }
    };
    ws.onclose = () => {
      onState(false);
      onSender?.(null);
      if (!closed) setTimeout(connect, (delay = Math.min(delay * 2, 10000)));
    };
  };
  connect();
  return () => {
    closed = true;
    ws?.close();
  };
}

export type Contact = {
  id: number;
  name: string | null;
  vip: boolean;
  tags: string[];
  identities: { kind: string; address: string }[];
};
export type Template = { id: number; name: string; shortcut?: string | null; texts: Record<string, string> };

export type Task = {
  id: number;
  title: string;
  kind: 'call_back' | 'follow_up' | 'other';
  ticket_number: number | null;
  due_at: string;
  status: string;
  overdue_at: string | null;
};

/* Every module hears the one stream the workspace keeps open. */
const listeners = new Set<(e: StreamEvent) => void>();

export function listen(fn: (e: StreamEvent) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function publish(e: StreamEvent) {
  for (const fn of listeners) fn(e);
}

/* Sends on the open stream (collision guard: viewing and typing). */
let sender: ((msg: unknown) => void) | null = null;
export function setSender(fn: ((msg: unknown) => void) | null) {
  sender = fn;
}
export function send(msg: unknown) {
  sender?.(msg);
}

/* A validation error from the API: { error: { code, message, field? } }. */
export type ApiError = { error?: { code: string; message: string; field?: string } };
