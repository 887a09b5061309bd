"""Calls on the customer's card and ticket, against SIPp callers on loopback.

A caller who hangs up while waiting in the Sales queue (nobody's phone registered) ends up
as a message of the phone channel on a ticket of the contact with the caller's number (in
Russian: the demo number speaks Russian), with a call_back task due in 15 minutes that the
agents' stream hears of; the call row names its contact, ticket and task. A second missed
call from the same number joins that ticket and adds a note, not a second task. The
missed-calls report lists the customer once, with two attempts (JSON and CSV). A call Anna
answers on her SIPp phone closes the task (the report's open list is then empty). The
setting missed_call_callback_minutes is validated and moves the due time. A failure of the
ticket work (a trigger refusing the phone channel's messages) never loses the call row.
Recordings: 404 without one, Range requests (206/416) against a file placed in the data
directory, and paths that lead out of it refused."""
import datetime
import os
import re
import sqlite3
import unittest

from sbtest import (DEMO_ADMIN, DEMO_ANNA, Daemon, assert_sipp_ok as ok, event_pred, free_port, pcma_audio, sipp,
                    sipp_start, wait_for)

SIP = "[sip]\nlisten = 127.0.0.1:0\nno_media_seconds = 10\nring_timeout_seconds = 10\nqueue_max_wait_seconds = 40\n"
CALLER = "79991230001"
E164 = "+" + CALLER
AUDIO = pcma_audio("tix")



def iso(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def get(d, token, path, status=200):
    st, h, body = d.req("GET", path, token=token)
    assert st == status, (path, st, body)
    return body


def calls(d, token):
    return get(d, token, "/api/v1/calls")["calls"]


def wait_calls(d, token, n):
    """The call log once it has n rows and the newest is on a ticket (or the
    ticket work is known to have failed: then its row has no ticket)."""
    return wait_for(lambda: len(calls(d, token)) >= n and calls(d, token), timeout=20, msg=f"{n} calls logged")


def missed_call(test, d, caller=CALLER, wait_ms=1500):
    """Dials the demo number, presses 1 (the Sales queue) and hangs up while waiting."""
    ok(test, sipp(d, "caller_queue", 100, keys={"digit": "1", "caller": caller, "wait_ms": wait_ms, "audio": AUDIO}))


def open_tasks(d, token):
    return [k for k in get(d, token, "/api/v1/tasks?status=open")["tasks"] if k["kind"] == "call_back"]


class VoiceTicketsTest(unittest.TestCase):
    def test_missed_calls_ticket_task_report_and_answer(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            st, _, teams = d.req("GET", "/api/v1/teams", token=token)
            sales = {t["name"]: t["id"] for t in teams["teams"]}["Sales"]
            # the phone channel exists once voice is on, and has no inbound URL
            chans = wait_for(lambda: [c for c in get(d, token, "/api/v1/channels")["channels"]
                                      if c["kind"] == "phone"], msg="phone channel")
            self.assertEqual(len(chans), 1)
            self.assertEqual((chans[0]["name"], chans[0]["active"]), ("Телефон", True))
            self.assertNotIn("inbound_url", chans[0])
            phone_channel = chans[0]["id"]
            ws = d.stream(token)

            # 1. the first missed call: a ticket, a call_back task, the call row tied to both
            missed_call(self, d)
            c1 = wait_calls(d, token, 1)[0]
            self.assertIn(c1["status"], ("abandoned", "missed"))
            self.assertIsNotNone(c1["ticket_id"], c1)
            self.assertIsNotNone(c1["contact_id"], c1)
            self.assertIsNotNone(c1["callback_task_id"], c1)
            self.assertIsNone(c1["recording_url"])
            self.assertEqual(get(d, token, f"/api/v1/calls/{c1['id']}")["call"], c1)
            number = c1["ticket_number"]
            t = get(d, token, f"/api/v1/tickets/{number}")
            self.assertEqual(t["ticket"]["id"], c1["ticket_id"])
            self.assertEqual(t["ticket"]["channel_kind"], "phone")
            self.assertEqual(t["ticket"]["channel_id"], phone_channel)
            self.assertEqual(t["contact"]["id"], c1["contact_id"])
            self.assertIn({"kind": "phone", "address": E164}, t["contact"]["identities"])
            texts = [m["text"] for m in t["messages"]]
            self.assertEqual(len(texts), 1, texts)
            self.assertRegex(texts[0], r"^Пропущенный звонок \(очередь «Sales», ожидание 0:0\d\)$")
            self.assertEqual(t["messages"][0]["direction"], "in")
            contact = get(d, token, f"/api/v1/contacts/{c1['contact_id']}")["contact"]
            self.assertIn({"kind": "phone", "address": E164}, contact["identities"])
            tasks = open_tasks(d, token)
            self.assertEqual(len(tasks), 1, tasks)
            task = tasks[0]
            self.assertEqual((task["id"], task["ticket_number"], task["contact_id"], task["assignee_id"]),
                             (c1["callback_task_id"], number, c1["contact_id"], None))
            self.assertIn(E164, task["title"])
            due = (iso(task["due_at"]) - iso(c1["ended_at"])).total_seconds()
            self.assertAlmostEqual(due, 15 * 60, delta=2)
            # the agents' stream heard of the ticket and the task
            ws.recv_until(event_pred("ticket.created", number=number), timeout=10)
            ws.recv_until(event_pred("task.created", id=task["id"], kind="call_back"), timeout=10)

            # 2. the same number again: the same ticket, a note, still one open task
            missed_call(self, d)
            c2 = wait_calls(d, token, 2)[0]
            self.assertNotEqual(c2["id"], c1["id"])
            self.assertEqual((c2["ticket_id"], c2["contact_id"], c2["callback_task_id"]),
                             (c1["ticket_id"], c1["contact_id"], task["id"]))
            self.assertEqual([k["id"] for k in open_tasks(d, token)], [task["id"]])
            self.assertEqual(open_tasks(d, token)[0]["due_at"], task["due_at"])  # keeps its due time
            msgs = wait_for(lambda: len(get(d, token, f"/api/v1/tickets/{number}")["messages"]) == 3
                            and get(d, token, f"/api/v1/tickets/{number}")["messages"], msg="call and note")
            self.assertEqual([m["direction"] for m in msgs], ["in", "in", "note"])
            self.assertIn("попытка 2", msgs[2]["text"])

            # 3. the report: one row for this customer, two attempts
            rep = get(d, token, "/api/v1/calls/missed")
            self.assertEqual(rep["status"], "open")
            self.assertEqual(len(rep["calls"]), 1, rep)
            row = rep["calls"][0]
            self.assertEqual((row["call_id"], row["phone"], row["ticket_number"], row["attempts"]),
                             (c2["id"], CALLER, number, 2))
            self.assertEqual((row["queue_team_id"], row["queue_name"]), (sales, "Sales"))
            self.assertEqual((row["task"]["id"], row["task"]["status"]), (task["id"], "open"))
            self.assertEqual(row["contact"]["id"], c1["contact_id"])
            self.assertEqual(row["last_call_at"], c2["offered_at"])
            self.assertEqual(row["first_call_at"], c1["offered_at"])
            self.assertGreaterEqual(row["waited_seconds"], 1)
            # a period without these calls is empty; bad parameters are 422 after auth
            self.assertEqual(get(d, token, "/api/v1/calls/missed?to=2020-01-01T00:00:00Z")["calls"], [])
            self.assertEqual(get(d, token, "/api/v1/calls/missed?status=later", 422)["error"]["code"],
                             "validation_failed")
            self.assertEqual(get(d, token, "/api/v1/calls/missed?bogus=1", 422)["error"]["code"], "validation_failed")
            get(d, d.token(DEMO_ANNA[0]), "/api/v1/calls/missed", 403)
            st, h, csv = d.req("GET", "/api/v1/calls/missed?format=csv&lang=ru&delimiter=semicolon", token=token)
            self.assertEqual(st, 200)
            self.assertTrue(h["content-type"].startswith("text/csv"), h)
            self.assertIn('attachment; filename="missed-calls-', h["content-disposition"])
            lines = csv.lstrip("\ufeff").split("\r\n")
            self.assertEqual(lines[0].split(";")[:3], ["Последний звонок", "Телефон", "Клиент"])
            cells = lines[1].split(";")
            self.assertEqual((cells[1], cells[3], cells[4], cells[6], cells[7]),
                             (CALLER, str(number), "Sales", "2", "открыта"))

            # 4. Anna answers the next call from that number: the task is done
            lp = free_port()
            ok(self, sipp(d, "register", 202, keys={"expires": 3600, "final": 200}, local_port=lp,
                          extra=["-au", "202", "-ap", "demo-sip-202"]))
            agents = get(d, token, "/api/v1/agents")["agents"]
            anna_id = next(a["id"] for a in agents if a["email"] == DEMO_ANNA[0])
            st, _, b = d.req("POST", f"/api/v1/agents/{anna_id}/presence", {"presence": "online"}, token=token)
            self.assertEqual(st, 200, b)  # queues ring agents who are online with a registered phone
            anna = sipp_start(d, "agent_uas", 202, keys={"caller": CALLER, "ring_ms": 500, "pt": 8, "codec": "8 PCMA"},
                              local_port=lp, extra=["-rtp_echo"], timeout=40)
            ok(self, sipp(d, "caller_queue", 100, keys={"digit": "1", "caller": CALLER, "wait_ms": 5000,
                                                        "audio": AUDIO}))
            ok(self, anna.wait())
            c3 = wait_calls(d, token, 3)[0]
            self.assertEqual(c3["status"], "answered")
            self.assertEqual((c3["ticket_id"], c3["callback_task_id"]), (c1["ticket_id"], None))
            wait_for(lambda: open_tasks(d, token) == [], msg="call_back task closed")
            done = [k for k in get(d, token, "/api/v1/tasks?status=done")["tasks"] if k["id"] == task["id"]]
            self.assertEqual(len(done), 1)
            ws.recv_until(event_pred("task.updated", id=task["id"], status="done"), timeout=10)
            msgs = get(d, token, f"/api/v1/tickets/{number}")["messages"]
            self.assertRegex(msgs[-1]["text"], r"^Входящий звонок, 0:0\d, ответил\(а\) Anna Sales / Анна Продажи$")
            self.assertEqual(get(d, token, "/api/v1/calls/missed")["calls"], [])
            rows = get(d, token, "/api/v1/calls/missed?status=all")["calls"]
            self.assertEqual([(r["attempts"], r["task"]["status"]) for r in rows], [(2, "done")])

            # 5. the next missed call opens a new task, for the ticket's assignee
            st, _, b = d.req("PATCH", f"/api/v1/tickets/{number}", {"assignee_id": anna_id}, token=token)
            self.assertEqual(st, 200, b)
            missed_call(self, d)
            c4 = wait_calls(d, token, 4)[0]
            self.assertEqual(c4["ticket_id"], c1["ticket_id"])
            (k4,) = open_tasks(d, token)
            self.assertEqual((k4["id"], k4["assignee_id"]), (c4["callback_task_id"], anna_id))
            self.assertNotEqual(k4["id"], task["id"])
            rows = get(d, token, "/api/v1/calls/missed")["calls"]
            self.assertEqual([(r["call_id"], r["attempts"], r["task"]["assignee_id"]) for r in rows],
                             [(c4["id"], 1, anna_id)])

            # 6. the setting: validated, and it moves the next task's due time
            st, _, b = d.req("PATCH", "/api/v1/settings", {"missed_call_callback_minutes": 0}, token=token)
            self.assertEqual((st, b["error"]["code"]), (422, "validation_failed"), b)
            st, _, b = d.req("PATCH", "/api/v1/settings", {"missed_call_callback_minutes": 10081}, token=token)
            self.assertEqual(st, 422, b)
            st, _, b = d.req("PATCH", "/api/v1/settings", {"missed_call_callback_minutes": "5"}, token=token)
            self.assertEqual(st, 422, b)
            self.assertEqual(get(d, token, "/api/v1/settings")["settings"]["missed_call_callback_minutes"], 15)
            st, _, b = d.req("PATCH", "/api/v1/settings", {"missed_call_callback_minutes": 45}, token=token)
            self.assertEqual((st, b["settings"]["missed_call_callback_minutes"]), (200, 45), b)
            missed_call(self, d, caller="79991230002")
            c5 = wait_calls(d, token, 5)[0]
            self.assertNotEqual(c5["ticket_id"], c1["ticket_id"])
            k5 = [k for k in open_tasks(d, token) if k["id"] == c5["callback_task_id"]]
            self.assertEqual(len(k5), 1)
            self.assertAlmostEqual((iso(k5[0]["due_at"]) - iso(c5["ended_at"])).total_seconds(), 45 * 60, delta=2)
            ws.close()
            d.stop()

    def test_ticket_failure_keeps_the_call_row(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            wait_for(lambda: any(c["kind"] == "phone" for c in get(d, token, "/api/v1/channels")["channels"]),
                     msg="phone channel")
            d.stop()
            db = sqlite3.connect(os.path.join(d.data_dir, "switchboard.db"))
            db.execute("CREATE TRIGGER test_refuse_calls BEFORE INSERT ON message "
                       "WHEN NEW.channel_id = (SELECT id FROM channel WHERE kind = 'phone') "
                       "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
            db.commit()
            db.close()
            d.start()
            missed_call(self, d)
            c = wait_calls(d, token, 1)[0]
            wait_for(lambda: "not put on a ticket" in d.log(), msg="failure logged")
            self.assertIn(c["status"], ("abandoned", "missed"))
            self.assertEqual((c["ticket_id"], c["contact_id"], c["callback_task_id"]), (None, None, None))
            # nothing of the ticket work stayed behind
            self.assertEqual(get(d, token, "/api/v1/tickets?limit=100")["tickets"], [])
            self.assertEqual(open_tasks(d, token), [])
            self.assertEqual(d.metrics()["switchboard_voice_calls_logged_total"], 1)
            d.stop()

    def test_recordings(self):
        with Daemon() as d:
            token = d.token(DEMO_ADMIN[0])
            anna = d.token(DEMO_ANNA[0])
            d.stop()
            rec_dir = os.path.join(d.data_dir, "recordings", "2026")
            os.makedirs(rec_dir)
            wav = bytes(range(256)) * 40  # 10,240 bytes stand for a WAV file
            with open(os.path.join(rec_dir, "call.wav"), "wb") as f:
                f.write(wav)
            outside = os.path.join(d.tmp, "outside.wav")  # beside the data directory
            with open(outside, "wb") as f:
                f.write(b"secret" * 10)
            os.symlink(outside, os.path.join(rec_dir, "link.wav"))
            db = sqlite3.connect(os.path.join(d.data_dir, "switchboard.db"))
            ids = {}
            for name, path in [("none", None), ("good", "recordings/2026/call.wav"), ("dotdot", "../outside.wav"),
                               ("absolute", outside), ("link", "recordings/2026/link.wav"),
                               ("missing", "recordings/2026/gone.wav")]:
                cur = db.execute(
                    "INSERT INTO call (direction, from_number, to_number, status, offered_at, ended_at, created_at, "
                    "recording, recording_ms) VALUES ('in', '79991230009', '100', 'voicemail', 1, 2, 2, ?, ?)",
                    (path, 640 if path else None))
                ids[name] = cur.lastrowid
            db.commit()
            db.close()
            d.start()

            def rec(name, headers=None, tok=token):
                return d.req("GET", f"/api/v1/calls/{ids[name]}/recording", headers=headers, token=tok)

            st, _, b = rec("none")
            self.assertEqual((st, b["error"]["code"]), (404, "no_recording"), b)
            st, _, b = d.req("GET", "/api/v1/calls/999999/recording", token=token)
            self.assertEqual((st, b["error"]["code"]), (404, "not_found"), b)
            st, _, b = d.req("GET", f"/api/v1/calls/{ids['good']}/recording")
            self.assertEqual(st, 401, b)
            self.assertEqual(get(d, token, f"/api/v1/calls/{ids['good']}")["call"]["recording_url"],
                             f"/api/v1/calls/{ids['good']}/recording")
            self.assertIsNone(get(d, token, f"/api/v1/calls/{ids['none']}")["call"]["recording_url"])
            get(d, token, "/api/v1/calls/999999", 404)

            # the whole file, then parts (an agent may play it from the ticket)
            raw = {}
            for hdr, want_status, want_range, part in [
                    (None, 200, None, wav),
                    ("bytes=0-99", 206, "bytes 0-99/10240", wav[:100]),
                    ("bytes=10000-", 206, "bytes 10000-10239/10240", wav[10000:]),
                    ("bytes=-16", 206, "bytes 10224-10239/10240", wav[-16:]),
                    ("bytes=10200-99999", 206, "bytes 10200-10239/10240", wav[10200:]),
                    ("bytes=0-1,5-6", 200, None, wav),  # several ranges: the whole file
                    ("items=0-1", 200, None, wav)]:
                st, h, body = self._raw(d, ids["good"], anna, hdr)
                self.assertEqual(st, want_status, (hdr, body[:200]))
                self.assertEqual(h.get("content-type"), "audio/wav")
                self.assertEqual(h.get("accept-ranges"), "bytes")
                self.assertEqual(h.get("content-range"), want_range, hdr)
                self.assertEqual(body, part, hdr)
                raw[hdr] = body
            for hdr in ("bytes=10240-", "bytes=99999-100000", "bytes=-0"):
                st, h, body = self._raw(d, ids["good"], anna, hdr)
                self.assertEqual(st, 416, hdr)
                self.assertEqual(h.get("content-range"), "bytes */10240")
                self.assertIn(b'"range_not_satisfiable"', body)

            # paths out of the data directory are refused, a missing file is 404
            for name in ("dotdot", "absolute", "link"):
                st, _, b = rec(name)
                self.assertEqual((st, b["error"]["code"]), (403, "forbidden"), (name, b))
            st, _, b = rec("missing")
            self.assertEqual((st, b["error"]["code"]), (404, "not_found"), b)
            self.assertIn("leaves the data directory", d.log())
            d.stop()

    @staticmethod
    def _raw(d, call_id, token, range_header):
        """The recording's bytes as they came (the client decodes only JSON)."""
        import http.client
        conn = http.client.HTTPConnection(d.host, d.port, timeout=10)
        headers = {"Authorization": "Bearer " + token}
        if range_header:
            headers["Range"] = range_header
        conn.request("GET", f"/api/v1/calls/{call_id}/recording", headers=headers)
        r = conn.getresponse()
        body = r.read()
        h = {k.lower(): v for k, v in r.getheaders()}
        conn.close()
        return r.status, h, body


if __name__ == "__main__":
    unittest.main()
