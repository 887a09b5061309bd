"""The engine's configuration over the REST API: rules, templates, calendars, SLA policies,
and the routing settings of teams and agents. Every document is validated by the engine's
own parsers before it is stored; errors name the field; references must exist."""
import signal
import unittest

from sbtest import DEMO_ADMIN, DEMO_ANNA, DEMO_BORIS, Daemon, wait_for

CALENDAR = {"name": "Офис в Москве", "time_zone": "Europe/Moscow",
            "hours": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
            "holidays": [{"date": "2026-01-01", "recurring": True, "name": "Новый год"}],
            "working_days": [{"date": "2026-11-01", "hours": [["10:00", "15:00"]]}]}
TEMPLATE = {"name": "Подтверждение", "shortcut": "ack",
            "texts": {"ru": "Ваш запрос №{{ticket.number}} принят в работу",
                      "en": "Your request #{{ticket.number}} has been received"}}
RULE = {"name": "Срочно", "on": ["ticket.created", "message.customer"],
        "when": {"field": "text", "op": "contains", "value": "срочно"},
        "actions": [{"type": "set_priority", "value": "urgent"}, {"type": "send_template", "id": 1}]}


class ConfigTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.d.__enter__()
        cls.admin = cls.d.token(DEMO_ADMIN[0])
        cls.anna = cls.d.token(DEMO_ANNA[0])
        cls.boris = cls.d.token(DEMO_BORIS[0])  # supervisor

    @classmethod
    def tearDownClass(cls):
        import os
        if os.environ.get("SB_DEBUG"):
            print(cls.d.log()[-3000:])
        cls.d.__exit__(None, None, None)

    def req(self, method, path, body=None, token=None):
        return self.d.req(method, path, body, token=token or self.admin)

    def assert_invalid(self, path, body, field, method="POST", status=422):
        st, _, b = self.req(method, path, body)
        self.assertEqual(st, status, (body, b))
        self.assertIn(field, b["error"]["message"], b)
        return b

    def test_documents_round_trip_and_references(self):
        st, _, b = self.req("POST", "/api/v1/calendars", CALENDAR)
        self.assertEqual(st, 201, b)
        cal = b["calendar"]
        self.assertEqual(cal["time_zone"], "Europe/Moscow")
        st, _, b = self.req("POST", "/api/v1/templates", TEMPLATE)
        self.assertEqual(st, 201, b)
        tpl = b["template"]
        # A rule may only name a template that exists.
        rule = dict(RULE, actions=[{"type": "send_template", "id": tpl["id"] + 100}])
        b = self.assert_invalid("/api/v1/rules", rule, "template")
        st, _, b = self.req("POST", "/api/v1/rules", dict(RULE, actions=[RULE["actions"][0],
                                                                        {"type": "send_template", "id": tpl["id"]}]))
        self.assertEqual(st, 201, b)
        rule = b["rule"]
        self.assertEqual(rule["name"], "Срочно")
        self.assertIn("position", rule)
        # Reading: every agent (templates are canned replies); writing: admins only.
        st, _, b = self.req("GET", "/api/v1/templates", token=self.anna)
        self.assertEqual(st, 200, b)
        self.assertIn(tpl["id"], [t["id"] for t in b["templates"]])
        st, _, b = self.req("POST", "/api/v1/templates", TEMPLATE, token=self.boris)
        self.assertEqual(st, 403, b)
        st, _, b = self.req("GET", f"/api/v1/rules/{rule['id']}", token=self.anna)
        self.assertEqual((st, b["rule"]["when"]), (200, RULE["when"]))
        # SLA policy referring to the calendar and a team.
        policy = {"name": "VIP", "conditions": {"vip": True, "team_id": 1, "channel": "chat"},
                  "calendar_id": cal["id"], "warn_pct": 80,
                  "targets": {"urgent": {"first_response_minutes": 15, "resolution_minutes": 240},
                              "normal": {"first_response_minutes": 60}}}
        st, _, b = self.req("POST", "/api/v1/sla-policies", policy)
        self.assertEqual(st, 201, b)
        # Deleting what others use is refused; unused things go.
        st, _, b = self.req("DELETE", f"/api/v1/templates/{tpl['id']}")
        self.assertEqual(st, 409, b)
        self.assertIn("rule", b["error"]["message"])
        st, _, b = self.req("DELETE", f"/api/v1/calendars/{cal['id']}")
        self.assertEqual(st, 409, b)
        st, _, b = self.req("DELETE", f"/api/v1/rules/{rule['id']}")
        self.assertEqual(st, 200, b)
        st, _, b = self.req("DELETE", f"/api/v1/templates/{tpl['id']}")
        self.assertEqual(st, 200, b)
        st, _, _ = self.req("GET", f"/api/v1/templates/{tpl['id']}")
        self.assertEqual(st, 404)
        # Replace with PUT; the id in the body must match the path.
        st, _, b = self.req("PUT", f"/api/v1/calendars/{cal['id']}", dict(CALENDAR, name="Офис (зима)"))
        self.assertEqual((st, b["calendar"]["name"]), (200, "Офис (зима)"), b)
        self.assert_invalid(f"/api/v1/calendars/{cal['id']}", dict(CALENDAR, id=cal["id"] + 1), "id", method="PUT")
        st, _, b = self.req("PUT", "/api/v1/calendars/999", CALENDAR)
        self.assertEqual(st, 404, b)
        st, _, b = self.req("POST", "/api/v1/calendars", dict(CALENDAR, id=cal["id"]))
        self.assertEqual(st, 409, b)

    def test_validation_names_the_field(self):
        bad_calendars = [
            (dict(CALENDAR, time_zone="Mars/Olympus"), "time_zone"),
            (dict(CALENDAR, time_zone="../../etc/passwd"), "time_zone"),
            (dict(CALENDAR, hours={"mon": [["09:00", "18:00"], ["17:00", "19:00"]]}), "hours.mon[1]"),
            (dict(CALENDAR, hours={"mon": [["18:00", "09:00"]]}), "hours.mon[0]"),
            (dict(CALENDAR, holidays=[{"date": "2026-02-30"}]), "holidays[0].date"),
            (dict(CALENDAR, colour="red"), "colour"),
            ({k: v for k, v in CALENDAR.items() if k != "name"}, "name"),
        ]
        for body, field in bad_calendars:
            self.assert_invalid("/api/v1/calendars", body, field)
        bad_templates = [
            (dict(TEMPLATE, texts={"ru": "Здравствуйте, {{contact.nmae}}"}), "texts.ru"),
            (dict(TEMPLATE, texts={"ru": "№{{ticket.number"}), "texts.ru"),
            (dict(TEMPLATE, texts={}), "texts"),
            (dict(TEMPLATE, texts={"RU!": "x"}), "texts.RU!"),
            (dict(TEMPLATE, shortcut="two words"), "shortcut"),
        ]
        for body, field in bad_templates:
            self.assert_invalid("/api/v1/templates", body, field)
        bad_rules = [
            (dict(RULE, on=["ticket.created", "ticket.exploded"]), "on[1]"),
            (dict(RULE, when={"field": "text", "op": "matches", "value": "(срочно"}), "when"),
            (dict(RULE, when={"all": [{"field": "priority", "op": "contains", "value": "x"}]}), "when.all[0].op"),
            (dict(RULE, actions=[{"type": "set_priority", "value": "asap"}]), "actions[0].value"),
            (dict(RULE, actions=[{"type": "set_priority", "value": "high", "id": 3}]), "actions[0].id"),
            (dict(RULE, on=["time.idle"]), "minutes"),
            (dict(RULE, actions=[{"type": "assign_team", "id": 777}]), "team 777"),
        ]
        for body, field in bad_rules:
            b = self.assert_invalid("/api/v1/rules", body, field)
        self.assertIn("team 777 does not exist", b["error"]["message"])
        bad_policies = [
            ({"name": "x", "targets": {"asap": {"first_response_minutes": 5}}}, "targets.asap"),
            ({"name": "x", "targets": {"high": {"first_response_minutes": -5}}}, "targets.high.first_response_minutes"),
            ({"name": "x", "targets": {"high": {"first_response_minutes": 5}}, "warn_pct": 100}, "warn_pct"),
            ({"name": "x", "targets": {"high": {}}, "conditions": {"channel": "pigeon"}}, "conditions.channel"),
            ({"name": "x", "targets": {"high": {}}, "calendar_id": 4242}, "calendar 4242"),
        ]
        for body, field in bad_policies:
            self.assert_invalid("/api/v1/sla-policies", body, field)
        # Nothing of that was stored.
        for path, key in (("/api/v1/rules", "rules"), ("/api/v1/sla-policies", "sla_policies")):
            st, _, b = self.req("GET", path)
            self.assertEqual(st, 200)
            self.assertFalse([x for x in b[key] if x["name"] == "x"], b)
        # Malformed JSON and wrong methods.
        st, _, b = self.d.req("POST", "/api/v1/rules", raw=b"{\"name\": ", token=self.admin,
                              headers={"Content-Type": "application/json"})
        self.assertEqual(st, 400, b)
        st, _, _ = self.req("PATCH", "/api/v1/rules/1", {})
        self.assertEqual(st, 405)

    def test_rules_keep_their_order(self):
        ids = []
        for pos, name in ((30, "third"), (10, "first"), (20, "second")):
            st, _, b = self.req("POST", "/api/v1/rules", {"name": name, "position": pos, "on": ["ticket.created"],
                                                          "actions": [{"type": "add_tag", "value": name}]})
            self.assertEqual(st, 201, b)
            ids.append(b["rule"]["id"])
        st, _, b = self.req("GET", "/api/v1/rules")
        names = [r["name"] for r in b["rules"] if r["name"] in ("first", "second", "third")]
        self.assertEqual(names, ["first", "second", "third"])
        st, _, b = self.req("POST", "/api/v1/templates", dict(TEMPLATE, position=3))
        self.assertEqual(st, 422, b)
        for i in ids:
            self.assertEqual(self.req("DELETE", f"/api/v1/rules/{i}")[0], 200)

    def test_team_and_agent_routing(self):
        st, _, b = self.req("POST", "/api/v1/calendars", dict(CALENDAR, name="Алматы", time_zone="Asia/Almaty"))
        self.assertEqual(st, 201, b)
        cal = b["calendar"]["id"]
        routing = {"strategy": "least_busy", "supervisor_id": 2, "unanswered_minutes": {"chat": 5, "call": 1},
                   "sticky_wait_minutes": 2, "calendar_id": cal, "auto_away_after": 3}
        st, _, b = self.req("PATCH", "/api/v1/teams/2", {"routing": routing}, token=self.boris)
        self.assertEqual(st, 200, b)
        self.assertEqual(b["team"]["routing"], routing)
        st, _, b = self.req("GET", "/api/v1/teams/2", token=self.anna)
        self.assertEqual(b["team"]["routing"], routing)
        for bad, field in (({"strategy": "random"}, "routing.strategy"),
                           ({"unanswered_minutes": {"fax": 3}}, "routing.unanswered_minutes.fax"),
                           ({"supervisor_id": 999}, "agent 999"),
                           ({"calendar_id": 999}, "calendar 999"),
                           ({"colour": 1}, "routing.colour"),
                           ({"call_queue": {"rating": "yes"}}, "routing.call_queue.rating"),
                           ({"call_queue": {"ratings": True}}, "routing.call_queue.ratings")):
            st, _, b = self.req("PATCH", "/api/v1/teams/2", {"routing": bad})
            self.assertEqual(st, 422, (bad, b))
            self.assertIn(field, b["error"]["message"])
        # The calendar is in use by the team now.
        st, _, b = self.req("DELETE", f"/api/v1/calendars/{cal}")
        self.assertEqual(st, 409, b)
        self.assertIn("team", b["error"]["message"])
        agent_routing = {"capacity": 1.5, "skills": ["billing"], "languages": ["ru", "kk"]}
        st, _, b = self.req("PATCH", "/api/v1/agents/2", {"routing": agent_routing})
        self.assertEqual((st, b["agent"]["routing"]), (200, agent_routing), b)
        # An agent may not change their own routing (admins decide capacity and skills).
        st, _, b = self.req("GET", "/api/v1/agents", token=self.anna)
        anna_id = [a["id"] for a in b["agents"] if a["email"] == DEMO_ANNA[0]][0]
        st, _, b = self.req("PATCH", f"/api/v1/agents/{anna_id}", {"routing": {"capacity": 50}}, token=self.anna)
        self.assertEqual(st, 403, b)
        for bad, field in (({"capacity": 0}, "routing.capacity"), ({"skills": "billing"}, "routing.skills"),
                           ({"languages": [""]}, "routing.languages")):
            st, _, b = self.req("PATCH", "/api/v1/agents/2", {"routing": bad})
            self.assertEqual(st, 422, (bad, b))
            self.assertIn(field, b["error"]["message"])

    def test_cli_export_and_import(self):
        import json
        import os
        st, _, b = self.req("POST", "/api/v1/templates", dict(TEMPLATE, name="Экспорт"))
        self.assertEqual(st, 201, b)
        tid = b["template"]["id"]
        st, _, b = self.req("POST", "/api/v1/rules", dict(RULE, name="Экспорт", position=5,
                                                          actions=[{"type": "send_template", "id": tid}]))
        self.assertEqual(st, 201, b)
        rid = b["rule"]["id"]
        self.assertEqual(self.req("PATCH", "/api/v1/teams/1", {"routing": {"strategy": "manual"}})[0], 200)
        path = os.path.join(self.d.tmp, "setup.json")
        self.d.cli("config", "export", path, check=True)
        with open(path, encoding="utf-8") as f:
            setup = json.load(f)
        self.assertEqual(setup["switchboard_config"], 1)
        exported = {r["id"]: r for r in setup["rules"]}
        self.assertEqual(exported[rid]["position"], 5)
        self.assertEqual(exported[rid]["name"], "Экспорт")
        self.assertIn(tid, [t["id"] for t in setup["templates"]])
        self.assertEqual([t["routing"] for t in setup["teams"] if t["id"] == 1], [{"strategy": "manual"}])
        self.assertTrue(all("email" in a and "routing" in a for a in setup["agents"]))
        # A broken file changes nothing, and the error says where.
        broken = json.loads(json.dumps(setup))
        broken["rules"] = [dict(RULE, id=900, when={"field": "text", "op": "near", "value": "x"})]
        with open(path, "w", encoding="utf-8") as f:
            json.dump(broken, f, ensure_ascii=False)
        p = self.d.cli("config", "import", path)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("rules[0].when.op", p.stderr)
        st, _, b = self.req("GET", f"/api/v1/rules/{rid}")
        self.assertEqual(st, 200, b)
        # A rule naming a template the file does not have is refused too.
        broken["rules"] = [dict(RULE, id=900, actions=[{"type": "send_template", "id": 4242}])]
        with open(path, "w", encoding="utf-8") as f:
            json.dump(broken, f, ensure_ascii=False)
        p = self.d.cli("config", "import", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("template 4242 is not in the file", p.stderr)
        # The good file, edited, replaces everything.
        setup["rules"] = [r for r in setup["rules"] if r["id"] == rid]
        setup["rules"][0]["name"] = "Импорт"
        setup["teams"] = [{"id": 1, "name": "Sales", "routing": {"strategy": "least_busy"}}]
        with open(path, "w", encoding="utf-8") as f:
            json.dump(setup, f, ensure_ascii=False)
        p = self.d.cli("config", "import", path, check=True)
        self.assertIn("imported", p.stdout)
        st, _, b = self.req("GET", "/api/v1/rules")
        self.assertEqual([r["name"] for r in b["rules"]], ["Импорт"])
        st, _, b = self.req("GET", "/api/v1/teams/1")
        self.assertEqual(b["team"]["routing"], {"strategy": "least_busy"})
        # Settings travel too: a survey template must be one of the file's templates.
        setup["settings"] = {"csat_template_id": 4242, "company_name": "Ромашка"}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(setup, f, ensure_ascii=False)
        p = self.d.cli("config", "import", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("settings.csat_template_id", p.stderr)
        # The time zone must be one this system has.
        setup["settings"] = {"csat_template_id": tid, "timezone": "Asia/Atlantis"}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(setup, f, ensure_ascii=False)
        p = self.d.cli("config", "import", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("settings.timezone", p.stderr)
        setup["settings"] = {"csat_template_id": tid, "company_name": "Ромашка", "weights": {"chat": 0.25},
                             "timezone": "Asia/Almaty"}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(setup, f, ensure_ascii=False)
        self.d.cli("config", "import", path, check=True)
        st, _, b = self.req("GET", "/api/v1/settings")
        self.assertEqual((b["settings"]["csat_template_id"], b["settings"]["company_name"],
                          b["settings"]["weights"]["chat"], b["settings"]["timezone"]),
                         (tid, "Ромашка", 0.25, "Asia/Almaty"))
        # The dashboard counts Almaty's day after the daemon's SIGHUP.
        self.d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.req("GET", "/api/v1/dashboard")[2]["today"]["time_zone"] == "Asia/Almaty",
                 msg="the dashboard in the imported time zone")
        # Round trip: exporting again gives what was imported.
        p = self.d.cli("config", "export", "-", check=True)
        again = json.loads(p.stdout)
        self.assertEqual(again["rules"], setup["rules"])
        self.assertEqual(again["templates"], setup["templates"])
        self.assertEqual(again["settings"], setup["settings"])

    def test_config_survives_restart(self):
        st, _, b = self.req("POST", "/api/v1/templates", dict(TEMPLATE, name="Перезапуск"))
        self.assertEqual(st, 201, b)
        tid = b["template"]["id"]
        self.d.restart()
        st, _, b = self.req("GET", f"/api/v1/templates/{tid}")
        self.assertEqual((st, b["template"]["name"]), (200, "Перезапуск"), b)


if __name__ == "__main__":
    unittest.main()
