"""What the workspace needs from the API beyond the basics: the collision
guard on the agents' stream (who views and who types in a ticket), @mentions
in notes, replies with attachments and through another channel of the
customer, and the inbox views "my teams" and "SLA at risk"."""
import base64
import json
import os
import sqlite3
import unittest

from sbtest import DEMO_ADMIN, DEMO_ANNA, DEMO_BORIS, Daemon, chat_session, chat_ws, event_pred, inbound


class WorkspaceApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = Daemon()
        d.__enter__()
        try:
            cls.anna = d.token(DEMO_ANNA[0])
            cls.boris = d.token(DEMO_BORIS[0])
            cls.admin = d.token(DEMO_ADMIN[0])
            me = lambda tok: d.req("GET", "/api/v1/auth/me", token=tok)[2]["agent"]["id"]
            cls.anna_id, cls.boris_id = me(cls.anna), me(cls.boris)
            st, h, teams = d.req("GET", "/api/v1/teams", token=cls.anna)
            cls.teams = {t["name"]: t["id"] for t in teams["teams"]}
        except BaseException:
            d.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def ticket(self, key, text="Вопрос", **patch):
        st, h, b = inbound(self.d, {"external_id": key, "from": {"id": key, "name": "Клиент " + key}, "text": text})
        self.assertEqual(st, 200, b)
        n = b["ticket_number"]
        if patch:
            st, h, p = self.d.req("PATCH", f"/api/v1/tickets/{n}", patch, token=self.admin)
            self.assertEqual(st, 200, p)
        return n

    def test_viewers_and_typing(self):
        n = self.ticket("view-1")
        anna, boris = self.d.stream(self.anna), self.d.stream(self.boris)
        try:
            anna.send_json({"type": "viewing", "ticket_number": n})
            ev = boris.recv_until(event_pred("ticket.viewers", ticket_number=n))
            self.assertEqual([(v["agent_id"], v["typing"]) for v in ev["data"]["viewers"]], [(self.anna_id, False)])
            # Boris opens it too: both see both.
            boris.send_json({"type": "viewing", "ticket_number": n})
            ev = anna.recv_until(lambda m: event_pred("ticket.viewers", ticket_number=n)(m)
                                 and len(m["data"]["viewers"]) == 2)
            self.assertEqual(sorted(v["agent_id"] for v in ev["data"]["viewers"]), sorted([self.anna_id, self.boris_id]))
            # Anna types: Boris is told once, with her name.
            anna.send_json({"type": "typing", "ticket_number": n})
            ev = boris.recv_until(lambda m: event_pred("ticket.viewers", ticket_number=n)(m)
                                  and any(v["typing"] for v in m["data"]["viewers"]))
            typing = [v for v in ev["data"]["viewers"] if v["typing"]]
            self.assertEqual([(v["agent_id"], v["name"]) for v in typing], [(self.anna_id, "Anna Sales / Анна Продажи")])
            # Anna moves away; then Boris's socket closes: Anna hears the list shrink.
            anna.send_json({"type": "viewing", "ticket_number": None})
            ev = boris.recv_until(lambda m: event_pred("ticket.viewers", ticket_number=n)(m)
                                  and [v["agent_id"] for v in m["data"]["viewers"]] == [self.boris_id])
            anna.send_json({"type": "viewing", "ticket_number": n})
            anna.recv_until(lambda m: event_pred("ticket.viewers", ticket_number=n)(m)
                            and len(m["data"]["viewers"]) == 2)
            boris.close()
            ev = anna.recv_until(lambda m: event_pred("ticket.viewers", ticket_number=n)(m)
                                 and [v["agent_id"] for v in m["data"]["viewers"]] == [self.anna_id])
            # Not a ticket number: the stream says so and stays open.
            anna.send_json({"type": "viewing", "ticket_number": "x"})
            err = anna.recv_until(lambda m: m.get("type") == "error")
            self.assertEqual(err["code"], "unknown_type")
            anna.send_json({"type": "ping"})
            anna.recv_until(lambda m: m.get("type") == "pong")
        finally:
            anna.close()
            boris.close()

    def test_mentions_in_notes(self):
        n = self.ticket("mention-1")
        ws = self.d.stream(self.anna)
        try:
            st, h, b = self.d.req("POST", f"/api/v1/tickets/{n}/messages",
                                  {"kind": "note", "text": "@anna посмотри, пожалуйста; копия boris@example.com"},
                                  token=self.boris)
            self.assertEqual(st, 201, b)
            ev = ws.recv_until(event_pred("notification", agent_id=self.anna_id, reason="mentioned"))
            self.assertEqual(ev["data"]["ticket_number"], n)
            self.assertEqual(ev["data"]["by"], self.boris_id)
            # An email address is not a mention, and a reply mentions nobody.
            st, h, b = self.d.req("POST", f"/api/v1/tickets/{n}/messages",
                                  {"kind": "note", "text": "Пишите на anna@example.com"}, token=self.boris)
            self.assertEqual(st, 201, b)
            st, h, b = self.d.req("POST", f"/api/v1/tickets/{n}/messages",
                                  {"kind": "note", "text": "@Boris глянь (сам себе не напоминаю)"}, token=self.anna)
            self.assertEqual(st, 201, b)
        finally:
            ws.close()
        db = sqlite3.connect(os.path.join(self.d.data_dir, "switchboard.db"), timeout=10)
        try:
            rows = db.execute("SELECT entity_id, data FROM event WHERE type = 'agent.notified' AND "
                              "json_extract(data, '$.reason') = 'mentioned' ORDER BY id").fetchall()
        finally:
            db.close()
        self.assertEqual([(r[0], json.loads(r[1])["ticket_id"] > 0) for r in rows],
                         [(self.anna_id, True), (self.boris_id, True)])

    def test_reply_with_attachment(self):
        n = self.ticket("file-1")
        data = "Счёт №42\n".encode() * 100
        body = {"text": "Счёт во вложении", "attachments": [
            {"name": "счёт.txt", "mime": "text/plain", "data": base64.b64encode(data).decode()}]}
        st, h, b = self.d.req("POST", f"/api/v1/tickets/{n}/messages", body, token=self.anna)
        self.assertEqual(st, 201, b)
        att = b["message"]["attachments"]
        self.assertEqual([(a["name"], a["mime"], a["size"]) for a in att], [("счёт.txt", "text/plain", len(data))])
        st, h, got = self.d.req("GET", att[0]["url"], token=self.anna)
        self.assertEqual(st, 200)
        self.assertEqual(got if isinstance(got, bytes) else got.encode(), data)
        # A file alone is a message too; bad files are refused with the field named.
        st, h, b = self.d.req("POST", f"/api/v1/tickets/{n}/messages", {"attachments": [
            {"name": "a.bin", "data": base64.b64encode(b"\x00\x01").decode()}]}, token=self.anna)
        self.assertEqual(st, 201, b)
        self.assertEqual(b["message"]["attachments"][0]["mime"], "application/octet-stream")
        for bad, field in [({"attachments": [{"name": "x", "data": "не base64"}]}, "attachments[0].data"),
                           ({"attachments": [{"data": "AA=="}]}, "attachments[0].name"),
                           ({"attachments": [{"name": "x", "data": "AA==", "url": "http://x"}]}, "attachments[0].url"),
                           ({"attachments": "x"}, "attachments"),
                           ({"attachments": [{"name": "x", "data": "AA=="}] * 11}, "attachments")]:
            st, h, b = self.d.req("POST", f"/api/v1/tickets/{n}/messages", bad, token=self.anna)
            self.assertEqual(st, 422, (bad, b))
            self.assertIn(f"'{field}", b["error"]["message"])

    def test_reply_through_another_channel(self):
        # The customer wrote on the API channel and, as the same contact, opened the web chat.
        n = self.ticket("switch-1")
        st, h, t = self.d.req("GET", f"/api/v1/tickets/{n}", token=self.anna)
        contact = t["ticket"]["contact_id"]
        s = chat_session(self.d)
        ws = chat_ws(self.d, s["token"])
        try:
            ws.send_json({"type": "message", "client_id": "c1", "text": "Это я, из чата"})
            chat_ticket = ws.recv_until(lambda m: m.get("type") == "ack")["ticket_number"]
            st, h, ct = self.d.req("GET", f"/api/v1/tickets/{chat_ticket}", token=self.anna)
            st, h, m = self.d.req("POST", f"/api/v1/contacts/{contact}/merge",
                                  {"other_id": ct["ticket"]["contact_id"]}, token=self.admin)
            self.assertIn(st, (200, 201), m)
            # The web chat address is this customer's now: a reply can go there.
            st, h, b = self.d.req("POST", f"/api/v1/tickets/{n}/messages",
                                  {"text": "Отвечаю в чат", "channel_id": 2}, token=self.anna)
            self.assertEqual(st, 201, b)
            self.assertEqual(b["message"]["channel_id"], 2)
            got = ws.recv_until(lambda m: m.get("type") == "message" and m["message"]["direction"] == "out")
            self.assertEqual(got["message"]["text"], "Отвечаю в чат")
        finally:
            ws.close()
        # A channel the customer has no address on, one that does not exist, a note with a channel.
        other = self.d.add_api_channel(name="Третий")
        for body, msg in [({"text": "x", "channel_id": other["id"]}, "no address"),
                          ({"text": "x", "channel_id": 999}, "does not exist"),
                          ({"text": "x", "kind": "note", "channel_id": 2}, "no channel")]:
            st, h, b = self.d.req("POST", f"/api/v1/tickets/{n}/messages", body, token=self.anna)
            self.assertEqual(st, 422, b)
            self.assertIn(msg, b["error"]["message"])

    def test_views_my_teams_and_sla_at_risk(self):
        sales = self.ticket("team-s", team_id=self.teams["Sales"])
        support = self.ticket("team-p", team_id=self.teams["Support"])
        nums = lambda q, tok: {t["number"] for t in self.d.req("GET", "/api/v1/tickets?limit=200&" + q,
                                                                 token=tok)[2]["tickets"]}
        self.assertIn(sales, nums("team=mine", self.anna))
        self.assertNotIn(support, nums("team=mine", self.anna))
        self.assertIn(support, nums("team=mine", self.boris))
        self.assertNotIn(sales, nums("team=mine", self.boris))
        # SLA at risk: a clock that warned or breached, on a ticket still open.
        risky, fine, done = self.ticket("sla-1"), self.ticket("sla-2"), self.ticket("sla-3")
        db = sqlite3.connect(os.path.join(self.d.data_dir, "switchboard.db"), timeout=10)
        try:
            with db:
                for num, state, status in [(risky, "warning", "open"), (fine, "met", "open"),
                                           (done, "breached", "resolved")]:
                    db.execute("UPDATE ticket SET sla = ?, status = ? WHERE number = ?",
                               (json.dumps({"due": {}, "state": {"first_response": state}}), status, num))
        finally:
            db.close()
        at_risk = nums("sla=at_risk", self.anna)
        self.assertIn(risky, at_risk)
        self.assertNotIn(fine, at_risk)
        self.assertNotIn(done, at_risk)
        for q in ("sla=late", "team=mine2"):
            st, h, b = self.d.req("GET", "/api/v1/tickets?" + q, token=self.anna)
            self.assertEqual(st, 422, b)


if __name__ == "__main__":
    unittest.main()
