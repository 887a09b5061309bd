"""API channel: signed inbound, stream events, agent replies delivered to the
callback URL (signature, retries, permanent failures), idempotency, joining
and reopening tickets."""
import base64
import hashlib
import http.client
import json
import os
import sqlite3
import time
import unittest
import uuid
from datetime import datetime

from sbtest import DEMO_ADMIN, DEMO_ANNA, CallbackServer, Daemon, event_pred, inbound, sign, wait_for


def uid(prefix="x"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def parse_time(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class ApiChannelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.d.__enter__()
        cls.anna = cls.d.token(DEMO_ANNA[0])
        cls.admin = cls.d.token(DEMO_ADMIN[0])

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    # -- helpers
    def channel_with_callback(self, cb):
        ch = self.d.add_api_channel(name=uid("chan"), callback_url=cb.url)
        cb.secret = ch["secret"]
        return ch

    def get_ticket(self, number):
        st, h, b = self.d.req("GET", f"/api/v1/tickets/{number}", token=self.anna)
        self.assertEqual(st, 200, b)
        return b

    def message_in_ticket(self, number, message_id):
        for m in self.get_ticket(number)["messages"]:
            if m["id"] == message_id:
                return m
        self.fail(f"message {message_id} not in ticket {number}")

    def reply(self, number, text):
        st, h, b = self.d.req("POST", f"/api/v1/tickets/{number}/messages", {"text": text}, token=self.anna)
        self.assertEqual(st, 201, b)
        self.assertEqual(b["message"]["direction"], "out")
        return b["message"]

    def wait_delivery(self, number, message_id, status, timeout=20):
        return wait_for(lambda: (lambda m: m if m["delivery_status"] == status else None)(
            self.message_in_ticket(number, message_id)), timeout=timeout,
            msg=f"message {message_id} to become {status}")

    def post_signed(self, path, secret, text, from_id):
        raw = json.dumps({"external_id": uid("e"), "from": {"id": from_id}, "text": text}).encode()
        return self.d.req("POST", path, raw=raw, headers={"X-Switchboard-Signature": sign(secret, raw)})

    def send(self, channel, secret, from_, text, external_id=None):
        st, h, b = inbound(self.d, {"external_id": external_id or uid("ext"), "from": from_, "text": text},
                           channel=channel, secret=secret)
        self.assertEqual(st, 200, b)
        return b

    # -- tests
    def test_full_round_trip(self):
        with CallbackServer() as cb:
            ch = self.channel_with_callback(cb)
            ws = self.d.stream(self.anna)
            try:
                customer = uid("cust")
                text_in = "Где мой заказ? / Where is my order?"
                r = self.send(ch["id"], ch["secret"], {"id": customer, "name": "Иван"}, text_in)
                self.assertFalse(r["duplicate"])
                number = r["ticket_number"]
                self.assertIsInstance(number, int)

                created = ws.recv_until(event_pred("ticket.created", number=number))
                self.assertEqual(created["data"]["channel_id"], ch["id"])
                self.assertEqual(created["data"]["status"], "new")
                self.assertEqual(created["data"]["contact"]["name"], "Иван")
                mc = ws.recv_until(event_pred("message.created", id=r["message_id"]))
                self.assertEqual(mc["data"]["text"], text_in)
                self.assertEqual(mc["data"]["direction"], "in")
                self.assertEqual(mc["data"]["ticket_number"], number)

                reply = self.reply(number, "Ваш заказ в пути / on its way")
                self.assertEqual(reply["delivery_status"], "queued")
                ws.recv_until(event_pred("message.created", id=reply["id"], direction="out"))

                reqs = cb.wait_requests(1, timeout=20)
                got = reqs[0]
                self.assertEqual(got["method"], "POST")
                self.assertTrue(got["sig_ok"], got["headers"])
                self.assertEqual(got["headers"].get("X-Switchboard-Signature"), sign(ch["secret"], got["body"]))
                self.assertEqual(got["headers"].get("Content-Type"), "application/json")
                self.assertEqual(got["attempt"], "1")
                body = got["json"]
                self.assertIsNotNone(body, got["body"])
                self.assertEqual(body["event"], "message.created")
                self.assertEqual(body["ticket"]["number"], number)
                self.assertEqual(body["to"]["id"], customer)
                self.assertEqual(body["message"]["id"], reply["id"])
                self.assertEqual(body["message"]["text"], "Ваш заказ в пути / on its way")
                self.assertEqual(body["contact_id"], r["contact_id"])

                m = self.wait_delivery(number, reply["id"], "sent")
                self.assertIsNone(m["delivery_error"])
                upd = ws.recv_until(event_pred("message.updated", id=reply["id"], delivery_status="sent"), timeout=20)
                self.assertEqual(upd["data"]["ticket_number"], number)

                t = self.get_ticket(number)
                self.assertEqual(t["ticket"]["status"], "open")  # the first reply opens a new ticket
                self.assertIsNotNone(t["ticket"]["first_response_at"])
                self.assertEqual([x["direction"] for x in t["messages"]], ["in", "out"])
                self.assertEqual(len(cb.snapshot()), 1)
            finally:
                ws.close()

    def test_note_is_not_delivered(self):
        with CallbackServer() as cb:
            ch = self.channel_with_callback(cb)
            r = self.send(ch["id"], ch["secret"], {"id": uid("c")}, "note test")
            st, h, b = self.d.req("POST", f"/api/v1/tickets/{r['ticket_number']}/messages",
                                  {"text": "internal only", "kind": "note"}, token=self.anna)
            self.assertEqual(st, 201, b)
            self.assertEqual(b["message"]["direction"], "note")
            self.assertIsNone(b["message"]["delivery_status"])
            # A reply after the note is delivered; the note never was.
            rep = self.reply(r["ticket_number"], "public answer")
            self.wait_delivery(r["ticket_number"], rep["id"], "sent")
            texts = [q["json"]["message"]["text"] for q in cb.snapshot()]
            self.assertEqual(texts, ["public answer"])

    def test_retry_after_503(self):
        with CallbackServer(statuses=[503, 200]) as cb:
            ch = self.channel_with_callback(cb)
            r = self.send(ch["id"], ch["secret"], {"id": uid("c")}, "retry please")
            rep = self.reply(r["ticket_number"], "reply that needs a retry")
            self.wait_delivery(r["ticket_number"], rep["id"], "sent", timeout=30)
            reqs = cb.snapshot()
            self.assertGreaterEqual(len(reqs), 2)
            self.assertEqual([q["status"] for q in reqs[:2]], [503, 200])
            self.assertEqual([q["attempt"] for q in reqs[:2]], ["1", "2"])
            self.assertTrue(all(q["sig_ok"] for q in reqs))
            self.assertEqual(reqs[0]["body"], reqs[1]["body"])
            self.assertEqual(reqs[0]["headers"]["X-Switchboard-Delivery"], reqs[1]["headers"]["X-Switchboard-Delivery"])
            # The first backoff is about 1 s (never shorter).
            self.assertGreaterEqual(reqs[1]["time"] - reqs[0]["time"], 0.9)

    def test_retry_after_header_is_honoured(self):
        with CallbackServer(statuses=[429, 200], retry_after=3) as cb:
            ch = self.channel_with_callback(cb)
            r = self.send(ch["id"], ch["secret"], {"id": uid("c")}, "slow receiver")
            rep = self.reply(r["ticket_number"], "after Retry-After")
            self.wait_delivery(r["ticket_number"], rep["id"], "sent", timeout=30)
            reqs = cb.snapshot()
            self.assertEqual([q["status"] for q in reqs[:2]], [429, 200])
            # 429 is retried (not permanent), no earlier than Retry-After says.
            self.assertGreaterEqual(reqs[1]["time"] - reqs[0]["time"], 2.9)

    def test_permanent_failure(self):
        with CallbackServer(statuses=[400]) as cb:
            ch = self.channel_with_callback(cb)
            r = self.send(ch["id"], ch["secret"], {"id": uid("c")}, "you will fail")
            ws = self.d.stream(self.anna)
            try:
                rep = self.reply(r["ticket_number"], "rejected by the receiver")
                m = self.wait_delivery(r["ticket_number"], rep["id"], "failed")
                self.assertIn("400", m["delivery_error"] or "")
                ws.recv_until(event_pred("message.updated", id=rep["id"], delivery_status="failed"))
            finally:
                ws.close()
            self.assertEqual(len(cb.snapshot()), 1)

    def test_channel_without_callback_fails_at_once(self):
        ch = self.d.add_api_channel(name=uid("nocb"))
        r = self.send(ch["id"], ch["secret"], {"id": uid("c")}, "no callback")
        rep = self.reply(r["ticket_number"], "nowhere to go")
        stored = self.message_in_ticket(r["ticket_number"], rep["id"])
        self.assertEqual(stored["delivery_status"], "failed")
        self.assertIn("callback_url", stored["delivery_error"] or "")

    def test_reply_response_matches_stored_status_without_callback(self):
        # Regression (fixed in tickets.c post_message_action): the 201 response
        # and the message.created event were built before the outbox marked
        # the message failed, so both said "queued" forever.
        ch = self.d.add_api_channel(name=uid("nocb2"))
        r = self.send(ch["id"], ch["secret"], {"id": uid("c")}, "no callback")
        ws = self.d.stream(self.anna)
        try:
            rep = self.reply(r["ticket_number"], "nowhere to go")
            stored = self.message_in_ticket(r["ticket_number"], rep["id"])
            self.assertEqual(rep["delivery_status"], stored["delivery_status"])
            ev = ws.recv_until(event_pred("message.created", id=rep["id"]))
            self.assertEqual(ev["data"]["delivery_status"], "failed")
        finally:
            ws.close()

    def test_bad_signature_stores_nothing(self):
        ch = self.d.add_api_channel(name=uid("sig"))
        st, h, before = self.d.req("GET", f"/api/v1/tickets?channel={ch['id']}", token=self.anna)
        self.assertEqual(st, 200)
        inbound_before = self.d.metrics()["switchboard_inbound_messages_total"]
        payload = {"external_id": uid("e"), "from": {"id": "sig-user"}, "text": "forged"}
        raw = json.dumps(payload).encode()
        path = f"/api/v1/channels/{ch['id']}/inbound"
        cases = {
            "missing": {},
            "wrong secret": {"X-Switchboard-Signature": sign("not-the-secret", raw)},
            "other channel's secret": {"X-Switchboard-Signature": sign(self.d.api_secret, raw)},
            "other body": {"X-Switchboard-Signature": sign(ch["secret"], raw + b" ")},
            "no prefix": {"X-Switchboard-Signature": sign(ch["secret"], raw)[7:]},
            "truncated": {"X-Switchboard-Signature": sign(ch["secret"], raw)[:-2]},
        }
        for name, headers in cases.items():
            with self.subTest(name):
                st, h, b = self.d.req("POST", path, raw=raw, headers=headers)
                self.assertEqual(st, 401, b)
                self.assertEqual(b["error"]["code"], "bad_signature")
        st, h, after = self.d.req("GET", f"/api/v1/tickets?channel={ch['id']}", token=self.anna)
        self.assertEqual(after["tickets"], before["tickets"])
        self.assertEqual(self.d.metrics()["switchboard_inbound_messages_total"], inbound_before)
        # Upper-case hex is the same signature.
        st, h, b = self.d.req("POST", path, raw=raw,
                              headers={"X-Switchboard-Signature": "sha256=" + sign(ch["secret"], raw)[7:].upper()})
        self.assertEqual(st, 200, b)

    def test_signature_checked_against_the_stored_secret(self):
        # After a first good message the daemon checks signatures before the
        # store sees the request, with the key it last read; the store's
        # secret stays the authority. Change it behind the daemon's back (a
        # second writer on the real database file) and the old key must stop
        # working at once, the new one work.
        ch = self.d.add_api_channel(name=uid("key"))
        path = f"/api/v1/channels/{ch['id']}/inbound"

        def post(secret, text):
            return self.post_signed(path, secret, text, "key-user")

        for i in range(3):
            st, h, b = post(ch["secret"], f"warm {i}")
            self.assertEqual(st, 200, b)
        st, h, b = post("not-the-secret", "forged")
        self.assertEqual(st, 401, b)
        new_secret = "ab" * 32
        db = sqlite3.connect(os.path.join(self.d.data_dir, "switchboard.db"), timeout=10)
        db.execute("UPDATE channel SET secret = ? WHERE id = ?", (new_secret, ch["id"]))
        db.commit()
        db.close()
        st, h, b = post(ch["secret"], "old key")
        self.assertEqual(st, 401, b)
        self.assertEqual(b["error"]["code"], "bad_signature")
        st, h, b = post(new_secret, "new key")
        self.assertEqual(st, 200, b)
        st, h, b = post(ch["secret"], "old key again")
        self.assertEqual(st, 401, b)

    def test_rotate_secret(self):
        ch = self.d.add_api_channel(name=uid("rot"))
        path = f"/api/v1/channels/{ch['id']}/inbound"

        def post(secret, text):
            return self.post_signed(path, secret, text, "rot-user")

        for i in range(2):  # the daemon now knows the old key
            self.assertEqual(post(ch["secret"], f"before {i}")[0], 200)
        st, h, b = self.d.req("POST", f"/api/v1/channels/{ch['id']}/secret", token=self.anna)
        self.assertEqual(st, 403, b)
        st, h, b = self.d.req("GET", f"/api/v1/channels/{ch['id']}/secret", token=self.admin)
        self.assertEqual(st, 405, b)
        st, h, b = self.d.req("POST", "/api/v1/channels/2/secret", token=self.admin)  # web chat
        self.assertEqual(st, 404, b)
        st, h, b = self.d.req("POST", f"/api/v1/channels/{ch['id']}/secret", token=self.admin)
        self.assertEqual(st, 200, b)
        self.assertEqual(b["channel_id"], ch["id"])
        new = b["secret"]
        self.assertRegex(new, r"^[0-9a-f]{64}$")
        self.assertNotEqual(new, ch["secret"])
        st, h, b = post(ch["secret"], "old key")
        self.assertEqual(st, 401, b)
        self.assertEqual(post(new, "new key")[0], 200)
        # The CLI prints the current secret and can rotate it too.
        p = self.d.cli("channel", "secret", ch["id"])
        self.assertEqual(p.stdout.strip(), new)
        p = self.d.cli("channel", "rotate-secret", ch["id"])
        self.assertEqual(p.returncode, 0, p.stderr)
        newer = p.stdout.strip()
        self.assertRegex(newer, r"^[0-9a-f]{64}$")
        self.assertEqual(post(new, "rotated again")[0], 401)
        self.assertEqual(post(newer, "newest key")[0], 200)
        p = self.d.cli("channel", "rotate-secret", 2)
        self.assertNotEqual(p.returncode, 0)
        # The secret itself never reaches the log.
        with open(self.d.stderr_path, errors="replace") as f:
            log = f.read()
        self.assertNotIn(new, log)
        self.assertNotIn(newer, log)

    def test_unknown_or_non_api_channel(self):
        payload = {"external_id": uid("e"), "from": {"id": "u"}, "text": "hello"}
        st, h, b = inbound(self.d, payload, channel=999999)
        self.assertEqual(st, 404, b)
        st, h, b = inbound(self.d, payload, channel=2)  # the demo web chat channel
        self.assertEqual(st, 404, b)
        st, h, b = self.d.req("GET", "/api/v1/channels/1/inbound")
        self.assertEqual(st, 405, b)
        self.assertEqual(h.get("Allow"), "POST")

    def test_inbound_validation(self):
        ch = self.d.add_api_channel(name=uid("val"))
        cases = [
            ({"from": {"id": "u"}, "text": "no id"}, "external_id"),
            ({"external_id": uid("e"), "text": "no from"}, "from"),
            ({"external_id": uid("e"), "from": {"name": "only a name"}, "text": "x"}, "from"),
            ({"external_id": uid("e"), "from": {"id": "u"}}, "text"),
            ({"external_id": uid("e"), "from": {"id": "u", "phone": "call me"}, "text": "x"}, "from.phone"),
            ({"external_id": uid("e"), "from": {"id": "u", "email": "not-an-email"}, "text": "x"}, "from.email"),
            ({"external_id": uid("e"), "from": {"id": "u"}, "text": "x", "timestamp": "yesterday"}, "timestamp"),
        ]
        for payload, field in cases:
            with self.subTest(field=field):
                st, h, b = inbound(self.d, payload, channel=ch["id"], secret=ch["secret"])
                self.assertEqual(st, 422, b)
                self.assertIn(field, b["error"]["message"])
        st, h, b = inbound(self.d, {"external_id": uid("e"), "from": {"id": "u"}, "text": "x", "extra": 1},
                           channel=ch["id"], secret=ch["secret"])
        self.assertEqual(st, 422, b)
        self.assertEqual(b["error"]["code"], "unknown_field")
        raw = b'{"external_id": "e", "from": '
        st, h, b = self.d.req("POST", f"/api/v1/channels/{ch['id']}/inbound", raw=raw,
                              headers={"X-Switchboard-Signature": sign(ch["secret"], raw)})
        self.assertEqual(st, 400, b)
        self.assertEqual(b["error"]["code"], "malformed_json")

    def test_idempotent_external_id(self):
        ch = self.d.add_api_channel(name=uid("idem"))
        ext = uid("ext")
        payload = {"external_id": ext, "from": {"id": uid("c")}, "text": "only once"}
        st, h, first = inbound(self.d, payload, channel=ch["id"], secret=ch["secret"])
        self.assertEqual(st, 200, first)
        self.assertFalse(first["duplicate"])
        dups_before = self.d.metrics()["switchboard_inbound_duplicates_total"]
        for text in ("only once", "a retry with other text"):
            payload["text"] = text
            st, h, again = inbound(self.d, payload, channel=ch["id"], secret=ch["secret"])
            self.assertEqual(st, 200, again)
            self.assertTrue(again["duplicate"])
            for k in ("ticket_number", "message_id", "ticket_id", "contact_id"):
                self.assertEqual(again[k], first[k], k)
        msgs = self.get_ticket(first["ticket_number"])["messages"]
        self.assertEqual(len(msgs), 1)
        self.assertEqual(msgs[0]["text"], "only once")
        self.assertEqual(msgs[0]["external_id"], ext)
        self.assertEqual(self.d.metrics()["switchboard_inbound_duplicates_total"], dups_before + 2)
        # The same external id on another channel is another message.
        ch2 = self.d.add_api_channel(name=uid("idem2"))
        st, h, other = inbound(self.d, payload, channel=ch2["id"], secret=ch2["secret"])
        self.assertEqual(st, 200, other)
        self.assertFalse(other["duplicate"])
        self.assertNotEqual(other["message_id"], first["message_id"])

    def test_attachments(self):
        data = "Счёт №1001\n".encode() + bytes(range(256))
        payload = {"external_id": uid("att"), "from": {"id": uid("c")}, "text": "",
                   "attachments": [{"data": base64.b64encode(data).decode(), "name": "счёт.bin",
                                    "mime": "application/octet-stream"},
                                   {"url": "https://shop.example/photo.jpg", "name": "photo.jpg",
                                    "mime": "image/jpeg"}]}
        st, h, b = inbound(self.d, payload)
        self.assertEqual(st, 200, b)
        m = self.message_in_ticket(b["ticket_number"], b["message_id"])
        stored, linked = m["attachments"]
        self.assertEqual(stored["sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(stored["size"], len(data))
        self.assertEqual(stored["name"], "счёт.bin")
        self.assertEqual(stored["url"], "/api/v1/files/" + stored["sha256"])
        self.assertEqual(linked, {"url": "https://shop.example/photo.jpg", "name": "photo.jpg",
                                  "mime": "image/jpeg"})
        # The stored file downloads byte for byte, for agents only.
        conn = http.client.HTTPConnection(self.d.host, self.d.port, timeout=10)
        conn.request("GET", stored["url"], headers={"Authorization": "Bearer " + self.anna})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.read(), data)
        self.assertEqual(resp.getheader("Content-Disposition"), "attachment")
        conn.close()
        self.assertEqual(self.d.req("GET", stored["url"])[0], 401)
        # A repeat is a duplicate, whatever it carries.
        st, h, again = inbound(self.d, payload)
        self.assertTrue(again["duplicate"])
        # Bad attachments are refused, naming the field; nothing is stored.
        for att, word in (({"data": "***", "name": "x"}, "base64"),
                          ({"data": "aGk=", "url": "https://x.y/z"}, "exactly one"),
                          ({"url": "ftp://x.y/z"}, "http(s)"),
                          ({"data": "aGk=", "colour": "red"}, "unknown field")):
            st, h, bad = inbound(self.d, {"external_id": uid("att"), "from": {"id": uid("c")}, "text": "t",
                                          "attachments": [att]})
            self.assertEqual(st, 422, (att, bad))
            self.assertIn("attachments[0]", bad["error"]["message"])
            self.assertIn(word, bad["error"]["message"])

    def test_cli_prints_the_channel_secret(self):
        r = self.d.cli("channel", "secret", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), self.d.api_secret)
        r = self.d.cli("channel", "secret", "2")  # web chat channels have none
        self.assertEqual(r.returncode, 1)
        self.assertIn("no API channel", r.stderr)

    def test_sender_timestamp_is_kept(self):
        ch = self.d.add_api_channel(name=uid("ts"))
        cases = [("2026-11-20T10:15:00+03:00", "2026-11-20T07:15:00.000Z"), (1700000000, "2023-11-14T22:13:20.000Z"),
                 (None, None)]
        for given, stored in cases:
            payload = {"external_id": uid("ext"), "from": {"id": uid("c")}, "text": "время"}
            if given is not None:
                payload["timestamp"] = given
            st, h, b = inbound(self.d, payload, channel=ch["id"], secret=ch["secret"])
            self.assertEqual(st, 200, b)
            m = self.message_in_ticket(b["ticket_number"], b["message_id"])
            self.assertEqual(m["sent_at"], stored)
            self.assertIsNotNone(m["created_at"])  # our own clock orders the timeline
        st, h, b = inbound(self.d, {"external_id": uid("ext"), "from": {"id": "x"}, "text": "t",
                                    "timestamp": "yesterday"}, channel=ch["id"], secret=ch["secret"])
        self.assertEqual(st, 422)
        self.assertIn("timestamp", b["error"]["message"])

    def test_same_contact_joins_then_reopens_then_new_after_close(self):
        ch = self.d.add_api_channel(name=uid("join"))
        who = {"id": uid("c")}
        a = self.send(ch["id"], ch["secret"], who, "first")
        b = self.send(ch["id"], ch["secret"], who, "second")
        self.assertEqual(b["ticket_number"], a["ticket_number"])
        self.assertEqual(b["contact_id"], a["contact_id"])
        self.assertNotEqual(b["message_id"], a["message_id"])
        n = a["ticket_number"]
        self.assertEqual([m["text"] for m in self.get_ticket(n)["messages"]], ["first", "second"])

        st, h, t = self.d.req("PATCH", f"/api/v1/tickets/{n}", {"status": "resolved"}, token=self.anna)
        self.assertEqual(st, 200, t)
        self.assertEqual(t["ticket"]["status"], "resolved")
        self.assertIsNotNone(t["ticket"]["resolved_at"])
        c = self.send(ch["id"], ch["secret"], who, "third: it broke again")
        self.assertEqual(c["ticket_number"], n)  # reopened within the 3-day window
        t = self.get_ticket(n)["ticket"]
        self.assertEqual(t["status"], "open")

        st, h, t = self.d.req("PATCH", f"/api/v1/tickets/{n}", {"status": "closed"}, token=self.anna)
        self.assertEqual(st, 200, t)
        e = self.send(ch["id"], ch["secret"], who, "fourth: new problem")
        self.assertNotEqual(e["ticket_number"], n)
        self.assertGreater(e["ticket_number"], n)
        self.assertEqual(e["contact_id"], a["contact_id"])
        self.assertEqual(self.get_ticket(n)["ticket"]["status"], "closed")
        self.assertEqual(self.get_ticket(e["ticket_number"])["ticket"]["status"], "new")

    def test_reopen_by_message_clears_resolved_at(self):
        # Regression (fixed in engine/model.c): reopening by a new message
        # kept the old resolved_at, while PATCH status=open clears it.
        ch = self.d.add_api_channel(name=uid("reopen"))
        who = {"id": uid("c")}
        a = self.send(ch["id"], ch["secret"], who, "first")
        n = a["ticket_number"]
        st, h, t = self.d.req("PATCH", f"/api/v1/tickets/{n}", {"status": "resolved"}, token=self.anna)
        self.assertEqual(st, 200, t)
        self.send(ch["id"], ch["secret"], who, "again")
        t = self.get_ticket(n)["ticket"]
        self.assertEqual(t["status"], "open")
        self.assertIsNone(t["resolved_at"], "an open ticket must not carry resolved_at")

    def test_pending_ticket_reopens(self):
        ch = self.d.add_api_channel(name=uid("pend"))
        who = {"id": uid("c")}
        a = self.send(ch["id"], ch["secret"], who, "waiting")
        st, h, t = self.d.req("PATCH", f"/api/v1/tickets/{a['ticket_number']}", {"status": "pending"},
                              token=self.anna)
        self.assertEqual(st, 200, t)
        b = self.send(ch["id"], ch["secret"], who, "customer answered")
        self.assertEqual(b["ticket_number"], a["ticket_number"])
        self.assertEqual(self.get_ticket(a["ticket_number"])["ticket"]["status"], "open")

    def test_inactive_channel(self):
        ch = self.d.add_api_channel(name=uid("off"))
        st, h, b = self.d.req("PATCH", f"/api/v1/channels/{ch['id']}", {"active": False}, token=self.admin)
        self.assertEqual(st, 200, b)
        st, h, b = inbound(self.d, {"external_id": uid("e"), "from": {"id": "u"}, "text": "hello?"},
                           channel=ch["id"], secret=ch["secret"])
        self.assertEqual(st, 409, b)
        self.assertEqual(b["error"]["code"], "channel_inactive")


class ReopenWindowZeroTest(unittest.TestCase):
    def test_message_after_resolve_creates_a_new_ticket(self):
        with Daemon("[tickets]\nreopen_window_days = 0\n") as d:
            anna = d.token(DEMO_ANNA[0])
            who = {"id": "window-zero"}
            st, h, a = inbound(d, {"external_id": "w1", "from": who, "text": "one"})
            self.assertEqual(st, 200, a)
            st, h, b = inbound(d, {"external_id": "w2", "from": who, "text": "two"})
            self.assertEqual(b["ticket_number"], a["ticket_number"])  # open tickets are still joined
            st, h, t = d.req("PATCH", f"/api/v1/tickets/{a['ticket_number']}", {"status": "resolved"}, token=anna)
            self.assertEqual(st, 200, t)
            # Let the wall clock leave the millisecond of resolved_at (see the report on `>=`).
            resolved = parse_time(t["ticket"]["resolved_at"])
            wait_for(lambda: time.time() > resolved + 0.005, timeout=5)
            st, h, c = inbound(d, {"external_id": "w3", "from": who, "text": "three"})
            self.assertEqual(st, 200, c)
            self.assertNotEqual(c["ticket_number"], a["ticket_number"])
            self.assertEqual(c["contact_id"], a["contact_id"])
            st, h, old = d.req("GET", f"/api/v1/tickets/{a['ticket_number']}", token=anna)
            self.assertEqual(old["ticket"]["status"], "resolved")


if __name__ == "__main__":
    unittest.main()
