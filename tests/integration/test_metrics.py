"""GET /api/v1/metrics/summary: service figures of a period, overall, per team and per active agent.

Live figures come from real work through the API channel and the REST API (routing, replies, an
SLA policy, resolving, a reassignment); they run on the real clock, so their counts are asserted
exactly and their durations loosely. Business time is checked exactly on tickets and event-log
rows written into the store at chosen instants while the daemon is stopped."""
import datetime
import json
import os
import sqlite3
import unittest
import urllib.parse

from sbtest import DEMO_ADMIN, DEMO_ANNA, DEMO_BORIS, Daemon, inbound, wait_for

# Mon-Fri 09:00-18:00 in Moscow (UTC+3 all year).
CALENDAR = {"name": "Офис в Москве", "time_zone": "Europe/Moscow",
            "hours": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}}
SUMMARY = "/api/v1/metrics/summary"


def iso(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def ms(text):
    """Unix ms of an ISO 8601 UTC time such as 2025-06-06T14:30:00Z."""
    dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(dt.timestamp() * 1000)


def query(**params):
    return SUMMARY + "?" + urllib.parse.urlencode(params)


def empty_durations():
    return {"count": 0, "median_minutes": None, "p90_minutes": None, "business_median_minutes": None}


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.d.__enter__()
        cls.admin = cls.d.token(DEMO_ADMIN[0])
        cls.anna_token = cls.d.token(DEMO_ANNA[0])  # agent
        cls.boris_token = cls.d.token(DEMO_BORIS[0])  # supervisor
        st, _, b = cls.d.req("GET", "/api/v1/agents", token=cls.admin)
        assert st == 200, (st, b)
        ids = {a["email"]: a["id"] for a in b["agents"]}
        cls.admin_id, cls.anna, cls.boris = ids[DEMO_ADMIN[0]], ids[DEMO_ANNA[0]], ids[DEMO_BORIS[0]]
        # Sales (team 1) works Mon-Fri 09:00-18:00 Moscow time; Support (team 2) has no calendar.
        st, _, b = cls.d.req("POST", "/api/v1/calendars", CALENDAR, token=cls.admin)
        assert st == 201, (st, b)
        cls.calendar = b["calendar"]["id"]
        cls.ok(cls.d.req("PATCH", "/api/v1/teams/1",
                         {"routing": {"strategy": "round_robin", "calendar_id": cls.calendar}}, token=cls.admin))
        cls.ok(cls.d.req("POST", "/api/v1/rules", {"name": "Всё в продажи", "on": ["ticket.created"],
                                                   "actions": [{"type": "assign_team", "id": 1}]}, token=cls.admin))
        targets = {"first_response_minutes": 30, "next_response_minutes": 30, "resolution_minutes": 600}
        cls.ok(cls.d.req("POST", "/api/v1/sla-policies",
                         {"name": "Все", "targets": {p: targets for p in ("low", "normal", "high", "urgent")}},
                         token=cls.admin))

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    @staticmethod
    def ok(resp):
        st, _, b = resp
        assert 200 <= st < 300, (st, b)
        return b

    def summary(self, token=None, **params):
        st, _, b = self.d.req("GET", query(**params), token=token or self.boris_token)
        self.assertEqual(st, 200, b)
        return b

    def send(self, ext, who, text="Здравствуйте, вопрос по заказу"):
        st, _, b = inbound(self.d, {"external_id": ext, "from": {"id": who, "name": "Клиент"}, "text": text})
        self.assertEqual(st, 200, b)
        return b["ticket_number"]

    def ticket(self, number):
        return self.ok(self.d.req("GET", f"/api/v1/tickets/{number}", token=self.admin))["ticket"]

    def wait_ticket(self, number, pred, what):
        return wait_for(lambda: (lambda t: t if pred(t) else None)(self.ticket(number)), timeout=10,
                        msg=f"ticket #{number}: {what}")

    def wait_sla(self, number, clock, state="met"):
        return self.wait_ticket(number, lambda t: ((t.get("sla") or {}).get("state") or {}).get(clock) == state,
                                f"SLA {clock} {state}")

    def reply(self, number, token):
        self.ok(self.d.req("POST", f"/api/v1/tickets/{number}/messages", {"text": "Сейчас проверю"}, token=token))

    def entry(self, summary, key, ident):
        found = [e for e in summary[key] if e[key[:-1] + "_id"] == ident]
        self.assertEqual(len(found), 1, (key, ident, summary[key]))
        return found[0]

    def assert_figures(self, m, created, resolved, first_count, resolution_count, sla, reassignments):
        """Counts exactly; durations only loosely (they ran on the real clock)."""
        self.assertEqual((m["tickets_created"], m["tickets_resolved"], m["reassignments"]),
                         (created, resolved, reassignments), m)
        self.assertEqual((m["first_response"]["count"], m["resolution"]["count"]), (first_count, resolution_count), m)
        got = {c: (m["sla"][c]["met"], m["sla"][c]["missed"]) for c in ("first_response", "next_response",
                                                                         "resolution")}
        self.assertEqual(got, sla, m)
        for c, (met, missed) in sla.items():
            self.assertEqual(m["sla"][c]["met_pct"], round(100 * met / (met + missed), 1) if met + missed else None)
        for key in ("first_response", "resolution"):
            f = m[key]
            if f["count"] == 0:
                self.assertEqual(f, empty_durations())
                continue
            for name in ("median_minutes", "p90_minutes", "business_median_minutes"):
                self.assertIsInstance(f[name], (int, float), f)
                self.assertTrue(0 <= f[name] < 5, f)
            # Business time never exceeds calendar time, ticket by ticket, so neither do the medians.
            self.assertLessEqual(f["business_median_minutes"], f["median_minutes"], f)
            self.assertLessEqual(f["median_minutes"], f["p90_minutes"], f)

    def test_1_live_work(self):
        start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
        self.ok(self.d.req("POST", f"/api/v1/agents/{self.anna}/presence", {"presence": "online"},
                           token=self.admin))
        # Three customers write; the rule sends them to Sales, round robin gives them to Anna.
        a, b, c = self.send("live-a1", "cust-a"), self.send("live-b1", "cust-b"), self.send("live-c1", "cust-c")
        for n in (a, b, c):
            self.wait_ticket(n, lambda t: t["assignee_id"] == self.anna and t["team_id"] == 1, "assigned to Anna")
        # Anna answers A and B in time; A writes again and is answered again; A is resolved.
        self.reply(a, self.anna_token)
        self.reply(b, self.anna_token)
        self.wait_sla(a, "first_response")
        self.wait_sla(b, "first_response")
        self.send("live-a2", "cust-a", "И ещё вопрос")
        self.wait_ticket(a, lambda t: ((t.get("sla") or {}).get("due") or {}).get("next_response"),
                         "next response clock running")
        self.reply(a, self.anna_token)
        self.wait_sla(a, "next_response")
        self.ok(self.d.req("PATCH", f"/api/v1/tickets/{a}", {"status": "resolved"}, token=self.anna_token))
        self.wait_sla(a, "resolution")
        # A supervisor moves B from Anna to Boris: the one reassignment.
        self.ok(self.d.req("PATCH", f"/api/v1/tickets/{b}", {"assignee_id": self.boris}, token=self.boris_token))
        self.assertEqual(self.ticket(b)["assignee_id"], self.boris)
        self.assertIsNone(self.ticket(c)["first_response_at"])

        end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        s = self.summary(**{"from": iso(start), "to": iso(end)})
        self.assertEqual((s["from"], s["to"]), (iso(start), iso(end)))
        zero = {"first_response": (0, 0), "next_response": (0, 0), "resolution": (0, 0)}
        all_sla = {"first_response": (2, 0), "next_response": (1, 0), "resolution": (1, 0)}
        self.assert_figures(s["overall"], 3, 1, 2, 1, all_sla, 1)
        self.assertEqual([t["team_id"] for t in s["teams"]], [1, 2])
        self.assertEqual([t["name"] for t in s["teams"]], ["Sales", "Support"])
        self.assert_figures(self.entry(s, "teams", 1), 3, 1, 2, 1, all_sla, 1)
        self.assert_figures(self.entry(s, "teams", 2), 0, 0, 0, 0, zero, 0)
        # Figures follow the ticket's current assignee: B (answered by Anna) is Boris's now.
        self.assertEqual(sorted(e["agent_id"] for e in s["agents"]), sorted([self.admin_id, self.anna, self.boris]))
        self.assert_figures(self.entry(s, "agents", self.anna), 2, 1, 1, 1,
                            {"first_response": (1, 0), "next_response": (1, 0), "resolution": (1, 0)}, 0)
        self.assert_figures(self.entry(s, "agents", self.boris), 1, 0, 1, 0,
                            {"first_response": (1, 0), "next_response": (0, 0), "resolution": (0, 0)}, 1)
        self.assert_figures(self.entry(s, "agents", self.admin_id), 0, 0, 0, 0, zero, 0)
        # Filters restrict every figure, overall included; the lists keep every entry.
        f = self.summary(**{"from": iso(start), "to": iso(end), "team_id": 2})
        self.assert_figures(f["overall"], 0, 0, 0, 0, zero, 0)
        self.assertEqual(len(f["teams"]), 2)
        f = self.summary(**{"from": iso(start), "to": iso(end), "agent_id": self.boris})
        self.assert_figures(f["overall"], 1, 0, 1, 0,
                            {"first_response": (1, 0), "next_response": (0, 0), "resolution": (0, 0)}, 1)
        self.assert_figures(self.entry(f, "agents", self.anna), 0, 0, 0, 0, zero, 0)
        f = self.summary(**{"from": iso(start), "to": iso(end), "team_id": 1, "agent_id": self.anna})
        self.assertEqual(f["overall"]["tickets_created"], 2)
        # A period before the work saw nothing.
        f = self.summary(**{"from": iso(start - datetime.timedelta(days=1)), "to": iso(start)})
        self.assert_figures(f["overall"], 0, 0, 0, 0, zero, 0)

    def test_2_business_time_on_chosen_instants(self):
        """Tickets and event-log rows at chosen instants, written while the daemon is stopped."""
        self.d.stop()
        db = sqlite3.connect(os.path.join(self.d.data_dir, "switchboard.db"))
        try:
            with db:
                now = ms("2025-06-20T00:00:00Z")
                contact = db.execute("INSERT INTO contact (name, created_at, updated_at) VALUES ('Архив', ?, ?)",
                                     (now, now)).lastrowid

                def ticket(number, status, team, assignee, created, first=None, resolved=None):
                    closed = ms("2025-06-19T00:00:00Z") if status == "closed" else None
                    return db.execute(
                        "INSERT INTO ticket (number, contact_id, channel_id, status, priority, team_id, assignee_id, "
                        "created_at, updated_at, first_response_at, resolved_at, closed_at) "
                        "VALUES (?, ?, 1, ?, 'normal', ?, ?, ?, ?, ?, ?, ?)",
                        (number, contact, status, team, assignee, ms(created), now, first and ms(first),
                         resolved and ms(resolved), closed)).lastrowid

                # Moscow is UTC+3: 14:30Z is 17:30 there.
                t1 = ticket(9001, "resolved", 1, self.admin_id, "2025-06-06T14:30:00Z",  # Fri 17:30
                            "2025-06-09T06:30:00Z", "2025-06-09T07:00:00Z")  # Mon 09:30, Mon 10:00
                t2 = ticket(9002, "closed", 1, self.anna, "2025-06-09T07:00:00Z", "2025-06-09T08:30:00Z")
                t3 = ticket(9003, "closed", 1, self.anna, "2025-06-07T09:00:00Z",  # Sat 12:00
                            "2025-06-09T06:15:00Z")  # Mon 09:15
                t4 = ticket(9004, "closed", 2, self.boris, "2025-06-06T14:30:00Z", "2025-06-09T06:30:00Z")
                t5 = ticket(9005, "resolved", 1, self.admin_id, "2025-05-30T14:00:00Z",  # before the period
                            "2025-05-30T14:05:00Z", "2025-06-09T06:10:00Z")
                t6 = ticket(9006, "closed", 1, self.anna, "2025-06-15T00:00:00Z", "2025-06-15T00:10:00Z")  # at `to`
                ticket(9007, "closed", 1, None, "2025-06-10T07:00:00Z")  # never answered

                def event(tid, at, etype, data):
                    db.execute("INSERT INTO event (at, actor_kind, actor_id, entity, entity_id, type, data) "
                               "VALUES (?, 'system', NULL, 'ticket', ?, ?, ?)", (ms(at), tid, etype, json.dumps(data)))

                event(t1, "2025-06-06T14:30:00Z", "ticket.assigned", {"to": self.anna, "team_id": 1})
                event(t1, "2025-06-06T15:00:00Z", "sla.breached", {"clock": "first_response"})
                event(t1, "2025-06-06T15:00:00Z", "sla.missed", {"clock": "first_response"})
                event(t1, "2025-06-09T06:00:00Z", "ticket.assigned", {"from": self.anna, "to": self.admin_id})
                event(t1, "2025-06-09T07:00:00Z", "sla.met", {"clock": "resolution"})
                event(t2, "2025-06-09T07:00:00Z", "ticket.assigned", {"to": None, "team_id": 1})
                event(t2, "2025-06-09T07:05:00Z", "ticket.assigned", {"to": self.anna, "team_id": 1})
                event(t2, "2025-06-09T08:30:00Z", "sla.met", {"clock": "first_response"})
                event(t3, "2025-06-07T09:00:00Z", "ticket.assigned", {"to": self.anna, "team_id": 1})
                event(t3, "2025-06-08T10:00:00Z", "sla.missed", {"clock": "first_response"})
                event(t3, "2025-06-15T00:00:00Z", "sla.met", {"clock": "first_response"})  # at `to`: outside
                event(t3, "2025-06-15T00:00:00Z", "ticket.assigned", {"to": self.admin_id})  # outside
                event(t4, "2025-06-10T10:00:00Z", "sla.met", {"clock": "next_response"})
                event(t5, "2025-05-30T14:00:00Z", "ticket.assigned", {"to": self.anna, "team_id": 1})
                event(t5, "2025-06-06T14:29:59.999Z", "sla.missed", {"clock": "resolution"})  # just before `from`
                event(t5, "2025-06-09T06:00:00Z", "ticket.assigned", {"from": self.anna, "to": self.admin_id})
                event(t6, "2025-06-15T00:10:00Z", "sla.met", {"clock": "first_response"})
                # survey answers: two in the period (5 and 4), one at `to` (outside)
                for tid, score, at in ((t1, 5, "2025-06-09T08:00:00Z"), (t5, 4, "2025-06-10T08:00:00Z"),
                                       (t2, 1, "2025-06-15T00:00:00Z")):
                    db.execute("UPDATE ticket SET csat_requested_at = ?, csat_score = ?, csat_at = ? WHERE id = ?",
                               (ms(at) - 1000, score, ms(at), tid))
        finally:
            db.close()
        self.d.start()

        # From Friday 17:30 Moscow time (given with its offset) up to, not including, Sunday 15 June.
        period = {"from": "2025-06-06T17:30:00+03:00", "to": "2025-06-15T00:00:00Z"}
        s = self.summary(**period)
        self.assertEqual((s["from"], s["to"]), ("2025-06-06T14:30:00.000Z", "2025-06-15T00:00:00.000Z"))
        o = s["overall"]
        self.assertEqual((o["tickets_created"], o["tickets_resolved"], o["reassignments"]), (5, 2, 2), o)
        self.assertEqual(o["csat"], {"count": 2, "average": 4.5})
        # First responses: calendar 3840, 90, 2715, 3840 min; business 60 (Fri 17:30-18:00 + Mon 09:00-09:30),
        # 90, 15 (Saturday does not count) and 3840 (Support has no calendar).
        self.assertEqual(o["first_response"], {"count": 4, "median_minutes": 2715.0, "p90_minutes": 3840.0,
                                               "business_median_minutes": 60.0})
        # Resolutions: #9001 3870 min (business 90), #9005 13930 min (business 60 + 5 x 540 + 10 = 2770).
        self.assertEqual(o["resolution"], {"count": 2, "median_minutes": 3870.0, "p90_minutes": 13930.0,
                                           "business_median_minutes": 90.0})
        self.assertEqual(o["sla"], {"first_response": {"met": 1, "missed": 2, "met_pct": 33.3},
                                    "next_response": {"met": 1, "missed": 0, "met_pct": 100.0},
                                    "resolution": {"met": 1, "missed": 0, "met_pct": 100.0}})
        sales, support = self.entry(s, "teams", 1), self.entry(s, "teams", 2)
        self.assertEqual((sales["tickets_created"], sales["tickets_resolved"], sales["reassignments"]), (4, 2, 2))
        self.assertEqual(sales["first_response"], {"count": 3, "median_minutes": 2715.0, "p90_minutes": 3840.0,
                                                   "business_median_minutes": 60.0})
        self.assertEqual(sales["resolution"], o["resolution"])
        self.assertEqual(sales["sla"]["first_response"], {"met": 1, "missed": 2, "met_pct": 33.3})
        self.assertEqual(sales["sla"]["next_response"], {"met": 0, "missed": 0, "met_pct": None})
        self.assertEqual((support["tickets_created"], support["tickets_resolved"], support["reassignments"]), (1, 0, 0))
        self.assertEqual(support["first_response"], {"count": 1, "median_minutes": 3840.0, "p90_minutes": 3840.0,
                                                     "business_median_minutes": 3840.0})
        self.assertEqual(support["resolution"], empty_durations())
        self.assertEqual(support["sla"]["next_response"], {"met": 1, "missed": 0, "met_pct": 100.0})
        admin, anna = self.entry(s, "agents", self.admin_id), self.entry(s, "agents", self.anna)
        self.assertEqual((admin["tickets_created"], admin["tickets_resolved"], admin["reassignments"]), (1, 2, 2))
        self.assertEqual(admin["first_response"], {"count": 1, "median_minutes": 3840.0, "p90_minutes": 3840.0,
                                                   "business_median_minutes": 60.0})
        self.assertEqual(admin["sla"]["first_response"], {"met": 0, "missed": 1, "met_pct": 0.0})
        self.assertEqual((anna["tickets_created"], anna["tickets_resolved"], anna["reassignments"]), (2, 0, 0))
        self.assertEqual(anna["first_response"], {"count": 2, "median_minutes": 90.0, "p90_minutes": 2715.0,
                                                  "business_median_minutes": 15.0})
        self.assertEqual(anna["sla"]["first_response"], {"met": 1, "missed": 1, "met_pct": 50.0})
        # Filters.
        f = self.summary(team_id=2, **period)["overall"]
        self.assertEqual((f["tickets_created"], f["first_response"]["business_median_minutes"]), (1, 3840.0))
        self.assertEqual(f["sla"]["next_response"]["met"], 1)
        self.assertEqual(f["reassignments"], 0)
        f = self.summary(agent_id=self.admin_id, **period)["overall"]
        self.assertEqual((f["tickets_created"], f["tickets_resolved"], f["reassignments"]), (1, 2, 2))
        self.assertEqual(f["resolution"]["business_median_minutes"], 90.0)
        # The business time follows the team's calendar: without it, Sales counts calendar time.
        self.ok(self.d.req("PATCH", "/api/v1/teams/1", {"routing": {"strategy": "round_robin"}}, token=self.admin))
        try:
            f = self.summary(team_id=1, **period)["overall"]
            self.assertEqual(f["first_response"]["business_median_minutes"], 2715.0)
        finally:
            self.ok(self.d.req("PATCH", "/api/v1/teams/1",
                               {"routing": {"strategy": "round_robin", "calendar_id": self.calendar}},
                               token=self.admin))

    def test_3_access_and_validation(self):
        good = {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}
        st, _, b = self.d.req("GET", query(**good))
        self.assertEqual(st, 401, b)
        st, _, b = self.d.req("GET", query(**good), token=self.anna_token)
        self.assertEqual((st, b["error"]["code"]), (403, "forbidden"), b)
        # The role is checked before the parameters.
        st, _, b = self.d.req("GET", SUMMARY, token=self.anna_token)
        self.assertEqual(st, 403, b)
        self.summary(token=self.admin, **good)
        self.summary(token=self.boris_token, **good)
        st, _, b = self.d.req("POST", query(**good), token=self.admin)
        self.assertEqual(st, 405, b)

        def invalid(path, name):
            st, _, b = self.d.req("GET", path, token=self.boris_token)
            self.assertEqual((st, b["error"]["code"]), (422, "validation_failed"), (path, b))
            self.assertIn(f"'{name}'", b["error"]["message"], (path, b))

        invalid(SUMMARY, "from")
        invalid(query(to=good["to"]), "from")
        invalid(query(**{"from": good["from"]}), "to")
        invalid(query(**{"from": "", "to": good["to"]}), "from")
        invalid(query(**{"from": "yesterday", "to": good["to"]}), "from")
        invalid(query(**{"from": "2026-01-01", "to": good["to"]}), "from")
        invalid(query(**{"from": good["from"], "to": "2026-02-01T00:00:00"}), "to")  # no zone
        invalid(SUMMARY + "?from=2026-01-01T03:00:00+03:00&to=2026-02-01T00:00:00Z", "from")  # '+' means ' '
        invalid(query(**{"from": good["to"], "to": good["from"]}), "to")
        invalid(query(**{"from": good["from"], "to": good["from"]}), "to")
        invalid(query(**{"from": "2025-01-01T00:00:00Z", "to": "2026-01-02T00:00:01Z"}), "to")  # > 366 days
        self.summary(**{"from": "2025-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"})  # 366 days
        invalid(query(foo="1", **good), "foo")
        invalid(query(team="1", **good), "team")
        invalid(SUMMARY + "?from=2026-01-01T00:00:00Z&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z", "from")
        invalid(query(team_id="abc", **good), "team_id")
        invalid(query(team_id="0", **good), "team_id")
        invalid(query(team_id="999", **good), "team_id")
        invalid(query(agent_id="-1", **good), "agent_id")
        invalid(query(agent_id="999", **good), "agent_id")


if __name__ == "__main__":
    unittest.main()
