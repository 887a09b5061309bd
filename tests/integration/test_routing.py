"""The routing engine inside the daemon, end to end: configured over the API, fed by real
inbound messages, its decisions visible on the tickets, in the event log, on the callback
URL and on the agents' stream, and kept across a restart."""
import json
import unittest

from sbtest import (DEMO_ADMIN, DEMO_ANNA, DEMO_BORIS, CallbackServer, Daemon, event_pred, inbound, sign,
                    wait_for)

ACK = {"name": "Подтверждение", "texts": {"ru": "Ваш запрос №{{ticket.number}} принят в работу",
                                          "en": "Your request #{{ticket.number}} has been received"}}


class RoutingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cb = CallbackServer()
        cls.d = Daemon()
        cls.d.__enter__()
        cls.admin = cls.d.token(DEMO_ADMIN[0])
        cls.anna_token = cls.d.token(DEMO_ANNA[0])
        cls.boris_token = cls.d.token(DEMO_BORIS[0])
        ch = cls.d.add_api_channel(name="Shop", callback_url=cls.cb.url)
        cls.channel, cls.secret = ch["id"], ch["secret"]
        cls.cb.secret = cls.secret
        st, _, b = cls.d.req("GET", "/api/v1/agents", token=cls.admin)
        ids = {a["email"]: a["id"] for a in b["agents"]}
        cls.anna, cls.boris = ids[DEMO_ANNA[0]], ids[DEMO_BORIS[0]]
        # Sales (team 1): round robin; everything new goes there; "срочно" is urgent; every
        # new request is acknowledged; first response within 30 minutes (urgent: 5).
        cls.ok(cls.d.req("PATCH", "/api/v1/teams/1", {"routing": {"strategy": "round_robin",
                                                                  "supervisor_id": cls.boris}}, token=cls.admin))
        st, _, b = cls.d.req("POST", "/api/v1/templates", ACK, token=cls.admin)
        cls.ok((st, None, b))
        tpl = b["template"]["id"]
        for rule in ({"name": "Всё в продажи", "position": 1, "on": ["ticket.created"],
                      "actions": [{"type": "assign_team", "id": 1}]},
                     {"name": "Срочно", "position": 2, "on": ["ticket.created", "message.customer"],
                      "when": {"field": "text", "op": "contains", "value": "срочно"},
                      "actions": [{"type": "set_priority", "value": "urgent"}]},
                     {"name": "Подтверждение", "position": 3, "on": ["ticket.created"],
                      "actions": [{"type": "send_template", "id": tpl}]}):
            cls.ok(cls.d.req("POST", "/api/v1/rules", rule, token=cls.admin))
        cls.ok(cls.d.req("POST", "/api/v1/sla-policies",
                         {"name": "Все", "targets": {p: {"first_response_minutes": 5 if p == "urgent" else 30}
                                                     for p in ("low", "normal", "high", "urgent")}},
                         token=cls.admin))

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)
        cls.cb.stop()

    @staticmethod
    def ok(resp):
        st, _, b = resp
        assert 200 <= st < 300, (st, b)
        return b

    def send(self, ext, text, who="shop-customer"):
        raw = json.dumps({"external_id": ext, "from": {"id": who, "name": "Айгерим"}, "text": text}).encode()
        st, _, b = self.d.req("POST", f"/api/v1/channels/{self.channel}/inbound", raw=raw,
                              headers={"X-Switchboard-Signature": sign(self.secret, raw)})
        self.assertEqual(st, 200, b)
        return b

    def ticket(self, number):
        return self.ok(self.d.req("GET", f"/api/v1/tickets/{number}", token=self.admin))

    def presence(self, agent, value):
        self.ok(self.d.req("POST", f"/api/v1/agents/{agent}/presence", {"presence": value}, token=self.admin))

    def wait_ticket(self, number, pred, what):
        return wait_for(lambda: (lambda t: t if pred(t) else None)(self.ticket(number)), timeout=10,
                        msg=f"ticket #{number}: {what}")

    def test_1_route_acknowledge_and_measure(self):
        self.presence(self.anna, "online")
        ws = self.d.stream(self.admin)
        try:
            r = self.send("r-1", "Срочно! Не проходит оплата заказа")
            n = r["ticket_number"]
            t = self.wait_ticket(n, lambda t: t["ticket"]["assignee_id"] == self.anna, "assigned to Anna")
            self.assertEqual(t["ticket"]["team_id"], 1)
            self.assertEqual(t["ticket"]["priority"], "urgent")
            due = t["ticket"]["sla"]["due"]["first_response"]
            self.assertIsNotNone(due, t["ticket"]["sla"])
            ws.recv_until(event_pred("ticket.updated"))
        finally:
            ws.close()
        # The acknowledgement went out through the channel, signed, with the number.
        reqs = self.cb.wait_requests(1)
        ack = [q for q in reqs if q["json"] and q["json"]["message"]["text"].startswith("Ваш запрос")]
        self.assertTrue(ack, reqs)
        self.assertTrue(ack[0]["sig_ok"])
        self.assertEqual(ack[0]["json"]["message"]["text"], f"Ваш запрос №{n} принят в работу")
        out = [m for m in self.ticket(n)["messages"] if m["direction"] == "out"]
        self.assertEqual(len(out), 1, out)
        # An automatic reply is not the first response; Anna's is, and it is in time.
        self.assertIsNone(self.ticket(n)["ticket"]["first_response_at"])
        self.ok(self.d.req("POST", f"/api/v1/tickets/{n}/messages", {"text": "Проверяю, минуту"},
                           token=self.anna_token))
        t = self.wait_ticket(n, lambda t: t["ticket"]["sla"]["state"].get("first_response") == "met", "FRT met")
        self.assertIsNotNone(t["ticket"]["first_response_at"])
        # A second message from the same customer joins the ticket: no second acknowledgement.
        self.send("r-2", "Спасибо")
        st, _, b = self.d.req("GET", f"/api/v1/tickets/{n}", token=self.admin)
        self.assertEqual(len([m for m in b["messages"] if m["direction"] == "out"]), 2)

    def test_2_queue_when_nobody_is_online_and_restart(self):
        self.presence(self.anna, "offline")
        r = self.send("q-1", "Здравствуйте, вопрос по доставке", who="night-owl")
        n = r["ticket_number"]
        t = self.wait_ticket(n, lambda t: t["ticket"]["team_id"] == 1, "in the Sales queue")
        self.assertIsNone(t["ticket"]["assignee_id"])
        st, _, b = self.d.req("GET", f"/api/v1/tickets/{n}", token=self.admin)
        # Across a restart the queue is rebuilt from the store ...
        self.d.restart()
        self.assertIsNone(self.ticket(n)["ticket"]["assignee_id"])
        # ... and the ticket goes to the first agent who comes online.
        self.presence(self.anna, "online")
        self.wait_ticket(n, lambda t: t["ticket"]["assignee_id"] == self.anna, "assigned after restart")

    def test_3_manual_changes_reach_the_engine(self):
        self.presence(self.anna, "online")
        r = self.send("m-1", "Хочу изменить адрес", who="mover")
        n = r["ticket_number"]
        self.wait_ticket(n, lambda t: t["ticket"]["assignee_id"] == self.anna, "assigned to Anna")
        # Resolving frees Anna; a supervisor moving a ticket to nobody puts it back in line.
        self.ok(self.d.req("PATCH", f"/api/v1/tickets/{n}", {"assignee_id": None}, token=self.boris_token))
        self.wait_ticket(n, lambda t: t["ticket"]["assignee_id"] == self.anna, "re-routed to Anna")
        self.ok(self.d.req("PATCH", f"/api/v1/tickets/{n}", {"status": "resolved"}, token=self.anna_token))
        # An agent may set only their own presence.
        st, _, b = self.d.req("POST", f"/api/v1/agents/{self.boris}/presence", {"presence": "online"},
                              token=self.anna_token)
        self.assertEqual(st, 403, b)
        st, _, b = self.d.req("POST", f"/api/v1/agents/{self.anna}/presence", {"presence": "busy"},
                              token=self.anna_token)
        self.assertEqual(st, 422, b)

    def test_4_absence_sends_new_work_to_the_deputy(self):
        # Boris joins Sales, and stands in for Anna while she is away.
        self.ok(self.d.req("PATCH", "/api/v1/teams/1", {"member_ids": [self.anna, self.boris]}, token=self.admin))
        self.presence(self.anna, "online")
        self.presence(self.boris, "online")
        self.ok(self.d.req("POST", f"/api/v1/agents/{self.anna}/absence",
                           {"until": "2099-01-01T00:00:00Z", "deputy_id": self.boris}, token=self.boris_token))
        r = self.send("a-1", "Добрый день, вопрос", who="while-away")
        n = r["ticket_number"]
        self.wait_ticket(n, lambda t: t["ticket"]["assignee_id"] == self.boris, "assigned to the deputy")
        st, _, b = self.d.req("POST", f"/api/v1/agents/{self.anna}/absence", {"until": None, "deputy_id": self.anna},
                              token=self.boris_token)
        self.assertEqual(st, 422, b)
        self.ok(self.d.req("POST", f"/api/v1/agents/{self.anna}/absence", {"until": None}, token=self.boris_token))

    def test_5_blacklist(self):
        self.presence(self.anna, "online")
        # A reason is required; duplicates are refused; agents may not edit the list.
        st, _, b = self.d.req("POST", "/api/v1/blacklist", {"kind": "phone", "value": "8 (916) 000-11-22",
                                                            "reason": " "}, token=self.boris_token)
        self.assertEqual(st, 422, b)
        self.assertIn("reason", b["error"]["message"])
        st, _, b = self.d.req("POST", "/api/v1/blacklist", {"kind": "phone", "value": "8 (916) 000-11-22",
                                                            "reason": "спам"}, token=self.anna_token)
        self.assertEqual(st, 403, b)
        b = self.ok(self.d.req("POST", "/api/v1/blacklist", {"kind": "phone", "value": "8 (916) 000-11-22",
                                                             "reason": "спам, рассылки"}, token=self.boris_token))
        entry = b["entry"]
        self.assertEqual((entry["value"], entry["added_by"]), ("+79160001122", self.boris))
        st, _, b = self.d.req("POST", "/api/v1/blacklist", {"kind": "phone", "value": "+7 916 000 11 22",
                                                            "reason": "ещё раз"}, token=self.boris_token)
        self.assertEqual(st, 409, b)
        st, _, b = self.d.req("POST", "/api/v1/blacklist", {"kind": "fax", "value": "1", "reason": "x"},
                              token=self.boris_token)
        self.assertEqual(st, 422, b)
        # A message from that number is stored, but the ticket is closed: not routed, not acknowledged.
        before = len(self.cb.snapshot())
        raw = json.dumps({"external_id": "bl-1", "from": {"id": "spammer", "phone": "+79160001122"},
                          "text": "Лучшие цены! Срочно!"}).encode()
        st, _, r = self.d.req("POST", f"/api/v1/channels/{self.channel}/inbound", raw=raw,
                              headers={"X-Switchboard-Signature": sign(self.secret, raw)})
        self.assertEqual(st, 200, r)
        t = self.wait_ticket(r["ticket_number"], lambda t: t["ticket"]["status"] == "closed", "closed")
        self.assertIn("blacklisted", t["ticket"]["tags"])
        self.assertIsNone(t["ticket"]["assignee_id"])
        self.assertEqual([m["text"] for m in t["messages"]], ["Лучшие цены! Срочно!"])
        self.assertEqual(len(self.cb.snapshot()), before)
        # Removed from the list, the same sender is routed again.
        st, _, b = self.d.req("GET", "/api/v1/blacklist", token=self.boris_token)
        self.assertEqual([e["id"] for e in b["blacklist"]], [entry["id"]])
        self.ok(self.d.req("DELETE", f"/api/v1/blacklist/{entry['id']}", token=self.boris_token))
        raw = json.dumps({"external_id": "bl-2", "from": {"id": "spammer", "phone": "+79160001122"},
                          "text": "Извините, вопрос"}).encode()
        st, _, r = self.d.req("POST", f"/api/v1/channels/{self.channel}/inbound", raw=raw,
                              headers={"X-Switchboard-Signature": sign(self.secret, raw)})
        self.assertEqual(st, 200, r)
        self.wait_ticket(r["ticket_number"], lambda t: t["ticket"]["assignee_id"] is not None, "routed again")

    def test_6_webhook_on_resolve(self):
        secret = self.d.cli("config", "webhook-secret", check=True).stdout.strip()
        self.assertEqual(len(secret), 64)
        hook = CallbackServer(secret=secret)
        try:
            rule = self.ok(self.d.req("POST", "/api/v1/rules", {
                "name": "CRM", "on": ["status.changed"],
                "when": {"field": "status", "op": "eq", "value": "resolved"},
                "actions": [{"type": "webhook", "url": hook.url}]}, token=self.admin))["rule"]
            self.presence(self.anna, "online")
            r = self.send("w-1", "Вопрос про гарантию", who="crm-customer")
            n = r["ticket_number"]
            self.wait_ticket(n, lambda t: t["ticket"]["assignee_id"] is not None, "assigned")
            self.ok(self.d.req("PATCH", f"/api/v1/tickets/{n}", {"status": "resolved"}, token=self.admin))
            got = hook.wait_requests(1)
            self.assertTrue(got[0]["sig_ok"], got[0]["headers"])
            body = got[0]["json"]
            self.assertEqual((body["event"], body["rule_id"]), ("rule.webhook", rule["id"]))
            self.assertEqual(body["ticket"]["number"], n)
            self.ok(self.d.req("DELETE", f"/api/v1/rules/{rule['id']}", token=self.admin))
        finally:
            hook.stop()

    def test_7_tasks(self):
        # An agent creates a call-back task on a ticket; validation names the field.
        self.presence(self.anna, "online")
        r = self.send("t-1", "Перезвоните мне, пожалуйста", who="call-me")
        n = r["ticket_number"]
        st, _, b = self.d.req("POST", "/api/v1/tasks", {"title": "Перезвонить", "kind": "call_back",
                                                        "ticket_number": n, "due_at": "2099-01-01T10:00:00Z",
                                                        "remind_at": "2099-01-01T11:00:00Z"}, token=self.anna_token)
        self.assertEqual(st, 422, b)
        self.assertIn("remind_at", b["error"]["message"])
        for body, field in (({"kind": "call_back", "due_at": "2099-01-01T10:00:00Z"}, "title"),
                            ({"title": "x", "kind": "fax", "due_at": "2099-01-01T10:00:00Z"}, "kind"),
                            ({"title": "x", "due_at": "tomorrow"}, "due_at"),
                            ({"title": "x", "due_at": "2099-01-01T10:00:00Z", "ticket_number": 99999}, "ticket_number")):
            st, _, b = self.d.req("POST", "/api/v1/tasks", body, token=self.anna_token)
            self.assertEqual(st, 422, (body, b))
            self.assertIn(field, b["error"]["message"])
        task = self.ok(self.d.req("POST", "/api/v1/tasks", {"title": "Перезвонить", "kind": "call_back",
                                                            "ticket_number": n, "due_at": "2099-01-01T10:00:00Z"},
                                  token=self.anna_token))["task"]
        self.assertEqual((task["assignee_id"], task["ticket_number"], task["status"]), (self.anna, n, "open"))
        mine = self.ok(self.d.req("GET", "/api/v1/tasks?assignee=me", token=self.anna_token))["tasks"]
        self.assertIn(task["id"], [t["id"] for t in mine])
        # A task due in the past is overdue at once: the engine marks it and tells the owner.
        ws = self.d.stream(self.admin)
        try:
            late = self.ok(self.d.req("POST", "/api/v1/tasks", {"title": "Уже поздно", "ticket_number": n,
                                                                "due_at": "2020-01-01T00:00:00Z"},
                                      token=self.anna_token))["task"]
            ws.recv_until(event_pred("task.overdue", task_id=late["id"]))
        finally:
            ws.close()
        got = wait_for(lambda: (lambda ts: ts if ts and ts[0]["overdue_at"] else None)(
            [t for t in self.ok(self.d.req("GET", "/api/v1/tasks?overdue=1", token=self.anna_token))["tasks"]
             if t["id"] == late["id"]]), timeout=10, msg="task marked overdue")
        self.assertIsNotNone(got[0]["overdue_at"])
        done = self.ok(self.d.req("PATCH", f"/api/v1/tasks/{task['id']}", {"status": "done"},
                                  token=self.anna_token))["task"]
        self.assertEqual(done["status"], "done")
        self.assertIsNotNone(done["done_at"])
        # Rules create tasks too.
        rule = self.ok(self.d.req("POST", "/api/v1/rules", {
            "name": "Перезвон", "on": ["ticket.created"],
            "when": {"field": "text", "op": "contains", "value": "перезвоните"},
            "actions": [{"type": "create_task", "title": "Перезвонить клиенту", "due_minutes": 30}]},
            token=self.admin))["rule"]
        r = self.send("t-2", "Перезвоните мне завтра", who="call-me-2")
        n2 = r["ticket_number"]
        found = wait_for(lambda: [t for t in self.ok(self.d.req("GET", "/api/v1/tasks?status=all",
                                                                token=self.admin))["tasks"]
                                  if t["ticket_number"] == n2] or None, timeout=10, msg="rule's task")
        self.assertEqual((found[0]["title"], found[0]["rule_id"]), ("Перезвонить клиенту", rule["id"]))
        self.ok(self.d.req("DELETE", f"/api/v1/rules/{rule['id']}", token=self.admin))

    def test_8_csat(self):
        tpl = self.ok(self.d.req("POST", "/api/v1/templates", {
            "name": "Оценка", "texts": {"ru": "Оцените, пожалуйста, решение запроса №{{ticket.number}}: {{csat.scale}}"}},
            token=self.admin))["template"]
        st, _, b = self.d.req("PATCH", "/api/v1/settings", {"csat_template_id": 4242}, token=self.admin)
        self.assertEqual(st, 422, b)
        st, _, b = self.d.req("PATCH", "/api/v1/settings", {"csat_template_id": tpl["id"]}, token=self.anna_token)
        self.assertEqual(st, 403, b)
        settings = self.ok(self.d.req("PATCH", "/api/v1/settings", {"csat_template_id": tpl["id"],
                                                                     "company_name": "Ромашка"},
                                      token=self.admin))["settings"]
        self.assertEqual((settings["csat_template_id"], settings["company_name"]), (tpl["id"], "Ромашка"))
        self.presence(self.anna, "online")
        r = self.send("c-1", "Не работает промокод", who="rater")
        n = r["ticket_number"]
        self.wait_ticket(n, lambda t: t["ticket"]["team_id"] == 1, "routed to Sales")
        before = len(self.cb.snapshot())
        self.ok(self.d.req("PATCH", f"/api/v1/tickets/{n}", {"status": "resolved"}, token=self.admin))
        survey = wait_for(lambda: [q for q in self.cb.snapshot()[before:]
                                   if q["json"] and q["json"]["message"]["text"].startswith("Оцените")] or None,
                          timeout=10, msg="survey on the callback")
        self.assertEqual(survey[0]["json"]["message"]["text"], f"Оцените, пожалуйста, решение запроса №{n}: 1–5")
        self.wait_ticket(n, lambda t: t["ticket"]["csat"]["requested_at"] is not None, "survey recorded")
        # The answer is stored, and the ticket stays resolved.
        self.send("c-2", "5, спасибо большое!", who="rater")
        t = self.wait_ticket(n, lambda t: t["ticket"]["csat"]["score"] == 5, "rated")
        self.assertEqual(t["ticket"]["status"], "resolved")
        self.assertEqual(t["ticket"]["csat"]["comment"], "спасибо большое!")
        # Anything else reopens it, as before.
        self.send("c-3", "Ой, и ещё вопрос", who="rater")
        self.wait_ticket(n, lambda t: t["ticket"]["status"] == "open", "reopened")
        self.ok(self.d.req("PATCH", "/api/v1/settings", {"csat_template_id": None}, token=self.admin))
        w = self.ok(self.d.req("PATCH", "/api/v1/settings", {"weights": {"chat": 0.25}}, token=self.admin))
        self.assertEqual(w["settings"]["weights"], {"chat": 0.25, "email": 0.1})
        for bad in ({"call": 0.5}, {"chat": 0}, {"chat": 2}):
            st, _, b = self.d.req("PATCH", "/api/v1/settings", {"weights": bad}, token=self.admin)
            self.assertEqual(st, 422, (bad, b))

    def test_9_agents_reply_with_templates(self):
        tpl = self.ok(self.d.req("POST", "/api/v1/templates", {
            "name": "Статус", "shortcut": "status",
            "texts": {"ru": "{{contact.first_name}}, по запросу №{{ticket.number}} работает {{agent.first_name}}.",
                      "en": "{{contact.first_name}}, {{agent.first_name}} is on request #{{ticket.number}}."}},
            token=self.admin))["template"]
        r = self.send("tp-1", "Где мой заказ?", who="templated")
        n = r["ticket_number"]
        m = self.ok(self.d.req("POST", f"/api/v1/tickets/{n}/messages", {"template_id": tpl["id"]},
                               token=self.anna_token))["message"]
        self.assertEqual(m["text"], f"Айгерим, по запросу №{n} работает Anna.")
        m = self.ok(self.d.req("POST", f"/api/v1/tickets/{n}/messages",
                               {"template_id": tpl["id"], "language": "en", "kind": "note"},
                               token=self.anna_token))["message"]
        self.assertEqual((m["text"], m["direction"]), (f"Айгерим, Anna is on request #{n}.", "note"))
        for body in ({"template_id": 99999}, {"template_id": tpl["id"], "text": "x"}, {"kind": "reply"}):
            st, _, b = self.d.req("POST", f"/api/v1/tickets/{n}/messages", body, token=self.anna_token)
            self.assertEqual(st, 422, (body, b))

    def test_9b_no_automatic_answer_to_an_autoresponder(self):
        before = len(self.cb.snapshot())
        raw = json.dumps({"external_id": "ar-1", "from": {"id": "robot"}, "auto_reply": True,
                          "text": "Я в отпуске до понедельника"}).encode()
        st, _, r = self.d.req("POST", f"/api/v1/channels/{self.channel}/inbound", raw=raw,
                              headers={"X-Switchboard-Signature": sign(self.secret, raw)})
        self.assertEqual(st, 200, r)
        self.wait_ticket(r["ticket_number"], lambda t: t["ticket"]["team_id"] == 1, "routed")
        # a human message right after gets its acknowledgement: so the first was not merely slow
        r2 = self.send("ar-2", "Здравствуйте, вопрос", who="human-after-robot")
        wait_for(lambda: [q for q in self.cb.snapshot()[before:]
                          if q["json"] and f"№{r2['ticket_number']} " in q["json"]["message"]["text"]] or None,
                 timeout=10, msg="acknowledgement of the human")
        self.assertFalse([q for q in self.cb.snapshot()[before:]
                          if q["json"] and f"№{r['ticket_number']} " in q["json"]["message"]["text"]])
        raw = json.dumps({"external_id": "ar-3", "from": {"id": "robot"}, "auto_reply": "yes", "text": "x"}).encode()
        st, _, b = self.d.req("POST", f"/api/v1/channels/{self.channel}/inbound", raw=raw,
                              headers={"X-Switchboard-Signature": sign(self.secret, raw)})
        self.assertEqual(st, 422, b)


if __name__ == "__main__":
    unittest.main()
