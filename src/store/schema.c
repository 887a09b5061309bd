/* schema.c - the schema as an append-only list of migrations. Never edit a
 * migration that has shipped; add a new one. Timestamps are Unix ms. */
#include "store/schema.h"

#include <stddef.h>

static const char *const migrations[] = {
    /* 1: foundation model */
    "CREATE TABLE setting (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
    "CREATE TABLE team (\n"
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,\n"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);\n"
    "CREATE TABLE agent (\n"
    "  id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL,\n"
    "  role TEXT NOT NULL CHECK (role IN ('agent','supervisor','admin')),\n"
    "  password_hash TEXT, language TEXT NOT NULL DEFAULT 'ru', active INTEGER NOT NULL DEFAULT 1,\n"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);\n"
    "CREATE TABLE agent_team (\n"
    "  agent_id INTEGER NOT NULL REFERENCES agent(id), team_id INTEGER NOT NULL REFERENCES team(id),\n"
    "  PRIMARY KEY (agent_id, team_id));\n"
    "CREATE INDEX agent_team_team ON agent_team(team_id);\n"
    "CREATE TABLE api_token (\n"
    "  id INTEGER PRIMARY KEY, agent_id INTEGER NOT NULL REFERENCES agent(id),\n"
    "  hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, created_at INTEGER NOT NULL,\n"
    "  revoked_at INTEGER);\n"
    "CREATE TABLE session (\n"
    "  hash TEXT PRIMARY KEY, agent_id INTEGER NOT NULL REFERENCES agent(id),\n"
    "  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);\n"
    "CREATE TABLE channel (\n"
    "  id INTEGER PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('api','webchat')),\n"
    "  name TEXT NOT NULL, secret TEXT, callback_url TEXT, config TEXT NOT NULL DEFAULT '{}',\n"
    "  active INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);\n"
    "CREATE TABLE contact (\n"
    "  id INTEGER PRIMARY KEY, name TEXT, language TEXT, vip INTEGER NOT NULL DEFAULT 0,\n"
    "  owner_id INTEGER REFERENCES agent(id), tags TEXT NOT NULL DEFAULT '[]',\n"
    "  attributes TEXT NOT NULL DEFAULT '{}', merged_into INTEGER REFERENCES contact(id),\n"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);\n"
    "CREATE TABLE contact_identity (\n"
    "  id INTEGER PRIMARY KEY, contact_id INTEGER NOT NULL REFERENCES contact(id),\n"
    "  kind TEXT NOT NULL, scope INTEGER NOT NULL DEFAULT 0, address TEXT NOT NULL,\n"
    "  created_at INTEGER NOT NULL, UNIQUE (kind, scope, address));\n"
    "CREATE INDEX contact_identity_contact ON contact_identity(contact_id);\n"
    "CREATE TABLE ticket (\n"
    "  id INTEGER PRIMARY KEY, number INTEGER NOT NULL UNIQUE,\n"
    "  contact_id INTEGER NOT NULL REFERENCES contact(id),\n"
    "  channel_id INTEGER NOT NULL REFERENCES channel(id), subject TEXT,\n"
    "  status TEXT NOT NULL CHECK (status IN ('new','open','pending','resolved','closed')),\n"
    "  priority TEXT NOT NULL CHECK (priority IN ('low','normal','high','urgent')),\n"
    "  team_id INTEGER REFERENCES team(id), assignee_id INTEGER REFERENCES agent(id),\n"
    "  tags TEXT NOT NULL DEFAULT '[]', attributes TEXT NOT NULL DEFAULT '{}',\n"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_message_at INTEGER,\n"
    "  first_response_at INTEGER, resolved_at INTEGER, closed_at INTEGER);\n"
    "CREATE INDEX ticket_contact ON ticket(contact_id, status);\n"
    "CREATE INDEX ticket_status ON ticket(status, id);\n"
    "CREATE INDEX ticket_assignee ON ticket(assignee_id, id);\n"
    "CREATE INDEX ticket_team ON ticket(team_id, id);\n"
    "CREATE INDEX ticket_channel ON ticket(channel_id, id);\n"
    "CREATE TABLE message (\n"
    "  id INTEGER PRIMARY KEY, ticket_id INTEGER NOT NULL REFERENCES ticket(id),\n"
    "  channel_id INTEGER REFERENCES channel(id),\n"
    "  direction TEXT NOT NULL CHECK (direction IN ('in','out','note','system')),\n"
    "  author_agent_id INTEGER REFERENCES agent(id), author_contact_id INTEGER REFERENCES contact(id),\n"
    "  text TEXT NOT NULL DEFAULT '', attachments TEXT NOT NULL DEFAULT '[]',\n"
    "  delivery_status TEXT, delivery_error TEXT, external_id TEXT, client_id TEXT,\n"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);\n"
    "CREATE UNIQUE INDEX message_external ON message(channel_id, external_id)\n"
    "  WHERE external_id IS NOT NULL;\n"
    "CREATE INDEX message_ticket ON message(ticket_id, id);\n"
    "CREATE VIRTUAL TABLE message_fts USING fts5(text, content='message', content_rowid='id',\n"
    "  tokenize='unicode61 remove_diacritics 2');\n"
    "CREATE TRIGGER message_fts_ai AFTER INSERT ON message BEGIN\n"
    "  INSERT INTO message_fts(rowid, text) VALUES (new.id, new.text); END;\n"
    "CREATE TRIGGER message_fts_ad AFTER DELETE ON message BEGIN\n"
    "  INSERT INTO message_fts(message_fts, rowid, text) VALUES ('delete', old.id, old.text); END;\n"
    "CREATE TABLE event (\n"
    "  id INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor_kind TEXT NOT NULL,\n"
    "  actor_id INTEGER, entity TEXT NOT NULL, entity_id INTEGER NOT NULL, type TEXT NOT NULL,\n"
    "  data TEXT NOT NULL DEFAULT '{}');\n"
    "CREATE INDEX event_entity ON event(entity, entity_id, id);\n"
    "CREATE TABLE outbox (\n"
    "  id INTEGER PRIMARY KEY, message_id INTEGER REFERENCES message(id),\n"
    "  channel_id INTEGER NOT NULL REFERENCES channel(id), url TEXT NOT NULL, body TEXT NOT NULL,\n"
    "  status TEXT NOT NULL CHECK (status IN ('pending','sent','failed')),\n"
    "  attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, last_error TEXT,\n"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);\n"
    "CREATE INDEX outbox_due ON outbox(status, next_at);\n",
    /* 2: full-text indexing moves from a per-row trigger to one bulk insert
     * per committed batch (sb_model_index_text): FTS5 writes a segment at
     * every savepoint release, i.e. per message with the trigger. */
    "DROP TRIGGER message_fts_ai;\n"
    "INSERT INTO setting (key, value) SELECT 'fts_indexed_upto', CAST(COALESCE(MAX(id), 0) AS TEXT)\n"
    "  FROM message;\n",
    /* 3: the sender's own time of an inbound message (API channel "timestamp") */
    "ALTER TABLE message ADD COLUMN sent_at INTEGER;\n",
    /* 4: message.created rows stay in the event log (its time order is the
     * primary key) but leave the per-entity index: the message table's own
     * (ticket_id, id) index finds a ticket's messages, and indexing every
     * message twice by ticket cost a quarter of ingest throughput (one more
     * scattered page per message at each commit). Queries of an entity's
     * history use `type <> 'message.created'` to hit this index. */
    ("DROP INDEX event_entity;\n"
     "CREATE INDEX event_entity ON event(entity, entity_id, id) WHERE type <> 'message.created';\n"),
    /* 5: the engine's configuration: rules, templates, calendars and SLA
     * policies as validated JSON documents (engine/config.h), and the
     * routing settings of teams and agents */
    ("CREATE TABLE config_item (\n"
     "  kind TEXT NOT NULL CHECK (kind IN ('rule','template','calendar','sla_policy')),\n"
     "  id INTEGER NOT NULL, position INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL,\n"
     "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (kind, id));\n"
     "ALTER TABLE team ADD COLUMN routing TEXT NOT NULL DEFAULT '{}';\n"
     "ALTER TABLE agent ADD COLUMN routing TEXT NOT NULL DEFAULT '{}';\n"),
    /* 6: what the engine keeps across restarts: agents' presence and
     * absences, and each ticket's SLA due times and outcomes */
    ("ALTER TABLE agent ADD COLUMN presence TEXT NOT NULL DEFAULT 'offline'\n"
     "  CHECK (presence IN ('online','away','offline'));\n"
     "ALTER TABLE agent ADD COLUMN absent_until INTEGER;\n"
     "ALTER TABLE agent ADD COLUMN deputy_id INTEGER REFERENCES agent(id);\n"
     "ALTER TABLE ticket ADD COLUMN sla TEXT;\n"),
    /* 7: the blacklist: who is not routed nor answered automatically, why,
     * and who said so */
    ("CREATE TABLE blacklist (\n"
     "  id INTEGER PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('phone','email','handle','contact')),\n"
     "  value TEXT NOT NULL, reason TEXT NOT NULL, added_by INTEGER REFERENCES agent(id),\n"
     "  created_at INTEGER NOT NULL, UNIQUE (kind, value));\n"),
    /* 8: webhooks fired by rules travel in the outbox too, signed with the
     * installation's webhook secret instead of a channel's */
    ("ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'callback'\n"
     "  CHECK (kind IN ('callback','webhook'));\n"),
    /* 9: tasks: call backs and follow-ups with an owner and a deadline */
    ("CREATE TABLE task (\n"
     "  id INTEGER PRIMARY KEY, title TEXT NOT NULL,\n"
     "  kind TEXT NOT NULL DEFAULT 'follow_up' CHECK (kind IN ('call_back','follow_up','other')),\n"
     "  ticket_id INTEGER REFERENCES ticket(id), contact_id INTEGER REFERENCES contact(id),\n"
     "  assignee_id INTEGER REFERENCES agent(id), due_at INTEGER NOT NULL, remind_at INTEGER,\n"
     "  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','done','cancelled')),\n"
     "  created_by INTEGER REFERENCES agent(id), rule_id INTEGER, reminded_at INTEGER, overdue_at INTEGER,\n"
     "  done_at INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);\n"
     "CREATE INDEX task_open ON task(status, due_at);\n"
     "CREATE INDEX task_assignee ON task(assignee_id, status, due_at);\n"),
    /* 10: customer satisfaction: when the survey went out, and the answer */
    ("ALTER TABLE ticket ADD COLUMN csat_requested_at INTEGER;\n"
     "ALTER TABLE ticket ADD COLUMN csat_score INTEGER CHECK (csat_score BETWEEN 1 AND 5);\n"
     "ALTER TABLE ticket ADD COLUMN csat_comment TEXT;\n"
     "ALTER TABLE ticket ADD COLUMN csat_at INTEGER;\n"),
    /* 11: the metrics summary scans SLA outcomes and reassignments by time;
     * a partial index keeps message rows (most of the log) out of it */
    "CREATE INDEX event_metrics ON event(at) WHERE type IN ('sla.met', 'sla.missed', 'ticket.assigned');\n",
    /* 12: voice configuration documents (engine/voice_config.h): phone
     * numbers and IVR menus join config_item. SQLite cannot change a CHECK
     * constraint in place, so the table is rebuilt (nothing refers to it). */
    ("CREATE TABLE config_item_v12 (\n"
     "  kind TEXT NOT NULL CHECK (kind IN ('rule','template','calendar','sla_policy','phone_number','ivr_menu')),\n"
     "  id INTEGER NOT NULL, position INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL,\n"
     "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (kind, id));\n"
     "INSERT INTO config_item_v12 (kind, id, position, data, created_at, updated_at)\n"
     "  SELECT kind, id, position, data, created_at, updated_at FROM config_item;\n"
     "DROP TABLE config_item;\n"
     "ALTER TABLE config_item_v12 RENAME TO config_item;\n"),
    /* 13: voice: agents' SIP extensions with their digest HA1 =
     * MD5(extension:realm:password) (MD5 because SIP digest requires it;
     * the password itself is never stored), and the call log */
    ("ALTER TABLE agent ADD COLUMN sip_extension TEXT;\n"
     "ALTER TABLE agent ADD COLUMN sip_ha1 TEXT;\n"
     "CREATE UNIQUE INDEX agent_sip_extension ON agent(sip_extension) WHERE sip_extension IS NOT NULL;\n"
     "CREATE TABLE call (\n"
     "  id INTEGER PRIMARY KEY, direction TEXT NOT NULL CHECK (direction IN ('in','out','internal')),\n"
     "  from_number TEXT NOT NULL, to_number TEXT NOT NULL, did TEXT, source TEXT,\n"
     "  status TEXT NOT NULL CHECK (status IN\n"
     "    ('answered','missed','abandoned','busy','voicemail','rejected','failed')),\n"
     "  hangup_by TEXT CHECK (hangup_by IN ('caller','agent','system')), hangup_cause TEXT,\n"
     "  sip_code INTEGER, ivr_path TEXT NOT NULL DEFAULT '', queue_team_id INTEGER REFERENCES team(id),\n"
     "  agent_id INTEGER REFERENCES agent(id), contact_id INTEGER REFERENCES contact(id),\n"
     "  offered_at INTEGER NOT NULL, answered_at INTEGER, ended_at INTEGER NOT NULL,\n"
     "  created_at INTEGER NOT NULL);\n"
     "CREATE INDEX call_offered ON call(offered_at);\n"),
    /* calls on tickets: a 'phone' channel kind (the channel the calls'
     * messages belong to; one row, made at start when voice is on), and
     * each call's ticket, recording and call-back task. SQLite cannot change
     * a CHECK in place, so `channel` is rebuilt by the documented 12-step
     * procedure (apply_migrations turns foreign keys off around it and runs
     * foreign_key_check before the commit): tickets, messages and the
     * outbox refer to channel(id) and keep pointing at the same ids. */
    ("CREATE TABLE channel_new (\n"
     "  id INTEGER PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('api','webchat','phone')),\n"
     "  name TEXT NOT NULL, secret TEXT, callback_url TEXT, config TEXT NOT NULL DEFAULT '{}',\n"
     "  active INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);\n"
     "INSERT INTO channel_new (id, kind, name, secret, callback_url, config, active, created_at, updated_at)\n"
     "  SELECT id, kind, name, secret, callback_url, config, active, created_at, updated_at FROM channel;\n"
     "DROP TABLE channel;\n"
     "ALTER TABLE channel_new RENAME TO channel;\n"
     "ALTER TABLE call ADD COLUMN ticket_id INTEGER REFERENCES ticket(id);\n"
     "ALTER TABLE call ADD COLUMN recording TEXT;\n"
     "ALTER TABLE call ADD COLUMN recording_ms INTEGER;\n"
     "ALTER TABLE call ADD COLUMN callback_task_id INTEGER REFERENCES task(id);\n"
     "CREATE INDEX call_missed ON call(offered_at) WHERE status IN ('missed','abandoned','busy','voicemail');\n"
     "CREATE INDEX call_callback ON call(callback_task_id) WHERE callback_task_id IS NOT NULL;\n"),
    /* forwarding schemes (engine/voice_config.h) join config_item: the
     * table is rebuilt with the longer CHECK list, as migration 12 did
     * (nothing refers to it) */
    ("CREATE TABLE config_item_fwd (\n"
     "  kind TEXT NOT NULL CHECK (kind IN ('rule','template','calendar','sla_policy','phone_number','ivr_menu',\n"
     "    'forwarding_scheme')),\n"
     "  id INTEGER NOT NULL, position INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL,\n"
     "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (kind, id));\n"
     "INSERT INTO config_item_fwd (kind, id, position, data, created_at, updated_at)\n"
     "  SELECT kind, id, position, data, created_at, updated_at FROM config_item;\n"
     "DROP TABLE config_item;\n"
     "ALTER TABLE config_item_fwd RENAME TO config_item;\n"),
    /* outbound calls (src/voice/outbound.c): hangup_by 'customer', the
     * called party of an outbound call. SQLite cannot change a CHECK in
     * place: `call` is rebuilt with the same columns and indexes (nothing
     * refers to it) */
    ("CREATE TABLE call_out (\n"
     "  id INTEGER PRIMARY KEY, direction TEXT NOT NULL CHECK (direction IN ('in','out','internal')),\n"
     "  from_number TEXT NOT NULL, to_number TEXT NOT NULL, did TEXT, source TEXT,\n"
     "  status TEXT NOT NULL CHECK (status IN\n"
     "    ('answered','missed','abandoned','busy','voicemail','rejected','failed')),\n"
     "  hangup_by TEXT CHECK (hangup_by IN ('caller','agent','system','customer')), hangup_cause TEXT,\n"
     "  sip_code INTEGER, ivr_path TEXT NOT NULL DEFAULT '', queue_team_id INTEGER REFERENCES team(id),\n"
     "  agent_id INTEGER REFERENCES agent(id), contact_id INTEGER REFERENCES contact(id),\n"
     "  offered_at INTEGER NOT NULL, answered_at INTEGER, ended_at INTEGER NOT NULL,\n"
     "  created_at INTEGER NOT NULL, ticket_id INTEGER REFERENCES ticket(id), recording TEXT,\n"
     "  recording_ms INTEGER, callback_task_id INTEGER REFERENCES task(id));\n"
     "INSERT INTO call_out (id, direction, from_number, to_number, did, source, status, hangup_by, hangup_cause,\n"
     "  sip_code, ivr_path, queue_team_id, agent_id, contact_id, offered_at, answered_at, ended_at, created_at,\n"
     "  ticket_id, recording, recording_ms, callback_task_id)\n"
     "  SELECT id, direction, from_number, to_number, did, source, status, hangup_by, hangup_cause, sip_code,\n"
     "  ivr_path, queue_team_id, agent_id, contact_id, offered_at, answered_at, ended_at, created_at, ticket_id,\n"
     "  recording, recording_ms, callback_task_id FROM call;\n"
     "DROP TABLE call;\n"
     "ALTER TABLE call_out RENAME TO call;\n"
     "CREATE INDEX call_offered ON call(offered_at);\n"
     "CREATE INDEX call_missed ON call(offered_at) WHERE status IN ('missed','abandoned','busy','voicemail');\n"
     "CREATE INDEX call_callback ON call(callback_task_id) WHERE callback_task_id IS NOT NULL;\n"),
    /* recordings retention (src/voice/retention.c): when a call's recording
     * was deleted and by what; the path stays, so that a file a crash left
     * behind is found again. The indexes serve the sweep: rows still holding
     * a recording by age, and which rows name one file. */
    ("ALTER TABLE call ADD COLUMN recording_deleted_at INTEGER;\n"
     "ALTER TABLE call ADD COLUMN recording_deleted_by TEXT;\n"
     "CREATE INDEX call_recording_kept ON call(ended_at)\n"
     "  WHERE recording IS NOT NULL AND recording_deleted_at IS NULL;\n"
     "CREATE INDEX call_recording ON call(recording) WHERE recording IS NOT NULL;\n"),
    /* the post-call rating (calls.c): the key the caller pressed after the
     * agent hung up, 1 to 5 (NULL when the queue does not ask or the caller
     * gave none), and when the agent hung up if the caller stayed to rate:
     * the talk ends there, not at ended_at */
    ("ALTER TABLE call ADD COLUMN rating INTEGER CHECK (rating BETWEEN 1 AND 5);\n"
     "ALTER TABLE call ADD COLUMN talk_ended_at INTEGER;\n"),
    /* the website's call-back requests (src/voice/callbacks.c): one pending
     * (queued or calling) per phone number, the attempts made and when the
     * next may be; kept after they end for the supervisors' list */
    ("CREATE TABLE callback_request (\n"
     "  id INTEGER PRIMARY KEY, channel_id INTEGER REFERENCES channel(id), phone TEXT NOT NULL,\n"
     "  name TEXT, comment TEXT, language TEXT, team_id INTEGER REFERENCES team(id),\n"
     "  status TEXT NOT NULL CHECK (status IN ('queued','calling','done','failed','refused','cancelled')),\n"
     "  reason TEXT, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,\n"
     "  retry_seconds INTEGER NOT NULL, next_attempt_at INTEGER, last_attempt_at INTEGER, last_result TEXT,\n"
     "  agent_id INTEGER REFERENCES agent(id), contact_id INTEGER REFERENCES contact(id),\n"
     "  ticket_id INTEGER REFERENCES ticket(id), task_id INTEGER REFERENCES task(id), caller_id TEXT,\n"
     "  requests INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,\n"
     "  done_at INTEGER);\n"
     "CREATE UNIQUE INDEX callback_pending ON callback_request(phone) WHERE status IN ('queued','calling');\n"
     "CREATE INDEX callback_status ON callback_request(status, id);\n"),
    /* which period of the number's calendar a call came in (calls.c):
     * business_hours, after_hours or holiday; NULL when it came through
     * no number (an extension, an outbound call) */
    ("ALTER TABLE call ADD COLUMN period TEXT CHECK (period IN ('business_hours','after_hours','holiday'));\n"),
};

int sb_schema_count(void)
{
    return (int)(sizeof migrations / sizeof migrations[0]);
}

const char *sb_schema_migration(int version)
{
    if (version < 1 || version > sb_schema_count())
        return NULL;
    return migrations[version - 1];
}
