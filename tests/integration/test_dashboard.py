"""GET /api/v1/dashboard and the `dashboard` stream event: the supervisors' live figures.

Live work through the API channel and the REST API moves the counters (a message arrives, an
agent comes online and gets the ticket, replies, resolves, the customer rates); the stream carries
the snapshot to supervisors only. After a restart the figures of the day are read back from the
store, and SLA states come from tickets written into the store at chosen instants."""
import datetime
import os
import sqlite3
import time
import unittest

from sbtest import DEMO_ADMIN, DEMO_ANNA, DEMO_BORIS, Daemon, event_pred, inbound, wait_for

DAY_MS = 24 * 3600 * 1000
CSAT = {"name": "Оценка", "texts": {"ru": "Оцените нас от 1 до 5", "en": "Rate us from 1 to 5"}}


def now_ms():
    return int(time.time() * 1000)


def team(snapshot, team_id):
    found = [t for t in snapshot["teams"] if t["team_id"] == team_id]
    assert len(found) == 1, (team_id, snapshot["teams"])
    return found[0]


def channel(snapshot, kind):
    found = [c for c in snapshot["channels"] if c["kind"] == kind]
    return found[0] if found else {"waiting": 0, "open": 0, "sla_at_risk": 0, "sla_breached": 0,
                                   "longest_wait_seconds": 0}


def agent(snapshot, agent_id):
    found = [a for a in snapshot["agents"] if a["id"] == agent_id]
    assert len(found) == 1, (agent_id, snapshot["agents"])
    return found[0]


class DashboardTest(unittest.TestCase):
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
        # Sales (team 1) takes every new ticket, round robin; resolving asks for a rating.
        cls.ok(cls.d.req("PATCH", "/api/v1/teams/1", {"routing": {"strategy": "round_robin"}}, token=cls.admin))
        cls.ok(cls.d.req("POST", "/api/v1/rules", {"name": "Всё в продажи", "on": ["ticket.created"],
                                                   "actions": [{"type": "assign_team", "id": 1}]}, token=cls.admin))
        tpl = cls.ok(cls.d.req("POST", "/api/v1/templates", CSAT, token=cls.admin))["template"]["id"]
        cls.ok(cls.d.req("PATCH", "/api/v1/settings", {"csat_template_id": tpl}, token=cls.admin))

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    @staticmethod
    def ok(resp):
        st, _, b = resp
        assert 200 <= st < 300, (st, b)
        return b

    def snapshot(self, token=None):
        st, _, b = self.d.req("GET", "/api/v1/dashboard", token=token or self.boris_token)
        self.assertEqual(st, 200, b)
        return b

    def wait_snapshot(self, pred, what):
        return wait_for(lambda: (lambda s: s if pred(s) else None)(self.snapshot()), timeout=10, msg=what)

    def send(self, ext, who, text):
        st, _, b = inbound(self.d, {"external_id": ext, "from": {"id": who, "name": "Клиент"}, "text": text})
        self.assertEqual(st, 200, b)
        return b["ticket_number"]

    def test_1_roles(self):
        st, _, b = self.d.req("GET", "/api/v1/dashboard")
        self.assertEqual((st, b["error"]["code"]), (401, "unauthorized"))
        st, _, b = self.d.req("GET", "/api/v1/dashboard", token=self.anna_token)
        self.assertEqual((st, b["error"]["code"]), (403, "forbidden"))
        for token in (self.boris_token, self.admin):
            self.assertEqual(self.d.req("GET", "/api/v1/dashboard", token=token)[0], 200)
        st, h, _ = self.d.req("POST", "/api/v1/dashboard", {}, token=self.admin)
        self.assertEqual((st, h["Allow"]), (405, "GET"))

    def test_2_shape(self):
        before = now_ms()
        s = self.snapshot()
        at = datetime.datetime.fromisoformat(s["at"].replace("Z", "+00:00")).timestamp() * 1000
        self.assertLessEqual(abs(at - before), 5000)
        today = s["today"]
        self.assertEqual(today["time_zone"], "UTC")
        day_start = datetime.datetime.fromisoformat(today["day_start"].replace("Z", "+00:00"))
        self.assertEqual(int(day_start.timestamp() * 1000), now_ms() // DAY_MS * DAY_MS)
        self.assertEqual(len(today["volume_by_hour"]), 24)
        self.assertEqual(sum(today["volume_by_hour"]), today["created"])
        for key in ("first_response", "resolution"):
            self.assertEqual(set(today[key]), {"count", "median_seconds", "average_seconds"})
        # Every team, and the shared inbox (no team), always listed.
        self.assertEqual([(t["team_id"], t["name"]) for t in s["teams"]], [(None, None), (1, "Sales"),
                                                                             (2, "Support")])
        for g in s["teams"] + [s["totals"]]:
            self.assertEqual(set(g) - {"team_id", "name"},
                             {"waiting", "longest_wait_seconds", "open", "sla_at_risk", "sla_breached"})
        self.assertEqual(sorted(a["id"] for a in s["agents"]), sorted([self.admin_id, self.anna, self.boris]))
        a = agent(s, self.anna)
        self.assertEqual(set(a), {"id", "name", "presence", "absent", "absent_until", "deputy_id", "load",
                                  "capacity", "open_tickets"})
        self.assertEqual(a["name"], "Anna Sales / Анна Продажи")

    def test_3_counters_move_live(self):
        self.ok(self.d.req("POST", f"/api/v1/agents/{self.anna}/presence", {"presence": "offline"},
                           token=self.admin))
        boris_ws = self.d.stream(self.boris_token)
        anna_ws = self.d.stream(self.anna_token)
        try:
            s0 = self.snapshot()
            sales0, api0, today0 = team(s0, 1), channel(s0, "api"), s0["today"]
            hour = (now_ms() % DAY_MS) // 3600000
            # A customer writes: nobody of Sales is online, so the ticket waits.
            number = self.send("dash-1", "dash-customer", "Здравствуйте, где мой заказ?")
            s1 = self.wait_snapshot(lambda s: team(s, 1)["waiting"] == sales0["waiting"] + 1, "the ticket waits")
            self.assertEqual(channel(s1, "api")["waiting"], api0["waiting"] + 1)
            self.assertEqual(s1["totals"]["waiting"], s0["totals"]["waiting"] + 1)
            self.assertEqual(team(s1, 1)["open"], sales0["open"] + 1)
            self.assertEqual(s1["today"]["created"], today0["created"] + 1)
            self.assertEqual(s1["today"]["volume_by_hour"][hour], today0["volume_by_hour"][hour] + 1)
            # The supervisor's stream hears it without asking.
            ev = boris_ws.recv_until(lambda m: m.get("type") == "dashboard"
                                     and team(m["data"], 1)["waiting"] == sales0["waiting"] + 1, timeout=10)
            self.assertEqual(set(ev["data"]), {"at", "totals", "teams", "channels", "agents", "today"})
            # The wait grows while nobody answers.
            wait_for(lambda: team(self.snapshot(), 1)["longest_wait_seconds"] >= 1, timeout=10,
                     msg="the longest wait to grow")
            # Anna comes online: the ticket is hers, nothing waits, her load shows.
            self.ok(self.d.req("POST", f"/api/v1/agents/{self.anna}/presence", {"presence": "online"},
                               token=self.admin))
            s2 = self.wait_snapshot(lambda s: agent(s, self.anna)["open_tickets"] == 1, "Anna has the ticket")
            a = agent(s2, self.anna)
            self.assertEqual(a["presence"], "online")
            self.assertGreater(a["load"], 0)
            self.assertEqual(a["capacity"], 1.0)
            self.assertEqual(team(s2, 1)["waiting"], sales0["waiting"])
            self.assertEqual(team(s2, 1)["longest_wait_seconds"], 0)
            boris_ws.recv_until(lambda m: m.get("type") == "dashboard"
                                and agent(m["data"], self.anna)["presence"] == "online", timeout=10)
            # Her first reply counts in today's first response times.
            self.ok(self.d.req("POST", f"/api/v1/tickets/{number}/messages", {"text": "Сейчас проверю"},
                               token=self.anna_token))
            s3 = self.wait_snapshot(lambda s: s["today"]["first_response"]["count"]
                                    == today0["first_response"]["count"] + 1, "the first response counted")
            frt = s3["today"]["first_response"]
            self.assertTrue(0 <= frt["median_seconds"] < 60 and 0 <= frt["average_seconds"] < 60, frt)
            # Resolved: today's resolutions move, Anna is free again.
            self.ok(self.d.req("PATCH", f"/api/v1/tickets/{number}", {"status": "resolved"}, token=self.anna_token))
            s4 = self.wait_snapshot(lambda s: s["today"]["resolved"] == today0["resolved"] + 1, "resolved today")
            self.assertEqual(s4["today"]["resolution"]["count"], today0["resolution"]["count"] + 1)
            self.assertEqual(agent(s4, self.anna)["open_tickets"], 0)
            self.assertEqual(team(s4, 1)["open"], sales0["open"])
            # The customer answers the survey.
            wait_for(lambda: self.ok(self.d.req("GET", f"/api/v1/tickets/{number}", token=self.admin))
                     ["ticket"]["csat"]["requested_at"], msg="the survey sent")
            self.send("dash-2", "dash-customer", "5 спасибо")
            s5 = self.wait_snapshot(lambda s: s["today"]["csat"]["count"] == today0["csat"]["count"] + 1,
                                    "the rating counted")
            self.assertEqual(s5["today"]["csat"]["average"], 5.0)
            self.assertEqual(s5["today"]["created"], today0["created"] + 1)  # a rating opens nothing
            # A supervisor marks Anna absent with Boris as her deputy, then back.
            until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)
            self.ok(self.d.req("POST", f"/api/v1/agents/{self.anna}/absence",
                               {"until": until.strftime("%Y-%m-%dT%H:%M:%SZ"), "deputy_id": self.boris},
                               token=self.boris_token))
            s6 = self.wait_snapshot(lambda s: agent(s, self.anna)["absent"], "Anna absent")
            self.assertEqual(agent(s6, self.anna)["deputy_id"], self.boris)
            self.assertTrue(agent(s6, self.anna)["absent_until"].startswith(until.strftime("%Y-%m-%dT%H:%M:%S")))
            boris_ws.recv_until(lambda m: m.get("type") == "dashboard" and agent(m["data"], self.anna)["absent"],
                                timeout=10)
            self.ok(self.d.req("POST", f"/api/v1/agents/{self.anna}/absence", {"until": None},
                               token=self.boris_token))
            s7 = self.wait_snapshot(lambda s: not agent(s, self.anna)["absent"], "Anna back")
            self.assertIsNone(agent(s7, self.anna)["deputy_id"])
            # The agent's stream heard the rest of the work but never the dashboard.
            with self.assertRaises(TimeoutError):
                anna_ws.recv_until(event_pred("dashboard"), timeout=2.5)
            self.assertTrue(any(m.get("type") == "ticket.created" for m in anna_ws.backlog), anna_ws.backlog)
        finally:
            boris_ws.close()
            anna_ws.close()
        self.ok(self.d.req("POST", f"/api/v1/agents/{self.anna}/presence", {"presence": "offline"},
                           token=self.admin))

    def test_4_restart_reads_the_day_and_sla_states(self):
        # Every ticket has a first response clock of 30 minutes, warned at half.
        self.ok(self.d.req("POST", "/api/v1/sla-policies",
                           {"name": "Все", "warn_pct": 50,
                            "targets": {p: {"first_response_minutes": 30} for p in ("low", "normal", "high",
                                                                                     "urgent")}},
                           token=self.admin))
        before = self.snapshot()["today"]
        self.d.stop()
        now = now_ms()
        day_start = now // DAY_MS * DAY_MS
        base = max(day_start, now - 10 * 60 * 1000)
        db = sqlite3.connect(os.path.join(self.d.data_dir, "switchboard.db"))
        try:
            with db:
                contact = db.execute("INSERT INTO contact (name, created_at, updated_at) VALUES ('Архив', ?, ?)",
                                     (now, now)).lastrowid
                number = db.execute("SELECT MAX(number) FROM ticket").fetchone()[0]

                def ticket(status, created, first=None, resolved=None, csat=None, team_id=None):
                    nonlocal number
                    number += 1
                    db.execute(
                        "INSERT INTO ticket (number, contact_id, channel_id, status, priority, team_id, created_at, "
                        "updated_at, first_response_at, resolved_at, csat_score, csat_at) "
                        "VALUES (?, ?, 1, ?, 'normal', ?, ?, ?, ?, ?, ?, ?)",
                        (number, contact, status, team_id, created, now, first, resolved, csat and csat[0],
                         csat and csat[1]))

                # Today: answered in 2 s, resolved in 4 s, rated 3.
                ticket("resolved", base, base + 2000, base + 4000, (3, base + 5000))
                # Yesterday: counts nothing today.
                y = day_start - 3 * 3600 * 1000
                ticket("resolved", y, y + 1000, y + 2000, (1, y + 3000))
                # Waiting in Support, unanswered: 20 minutes (at risk) and 45 minutes (breached).
                at_risk, breached = now - 20 * 60 * 1000, now - 45 * 60 * 1000
                ticket("new", at_risk, team_id=2)
                ticket("new", breached, team_id=2)
        finally:
            db.close()
        self.d.start()
        s = self.wait_snapshot(lambda s: team(s, 2)["sla_breached"] == 1, "the SLA states of restored tickets")
        support = team(s, 2)
        self.assertEqual((support["waiting"], support["open"], support["sla_at_risk"], support["sla_breached"]),
                         (2, 2, 1, 1), support)
        self.assertTrue(45 * 60 <= support["longest_wait_seconds"] < 50 * 60, support)
        self.assertEqual((s["totals"]["sla_at_risk"], s["totals"]["sla_breached"]), (1, 1))
        # The figures counted live before the restart are what the store says, plus today's ticket.
        today = s["today"]
        created = 1 + (at_risk >= day_start) + (breached >= day_start)
        self.assertEqual(today["created"], before["created"] + created)
        self.assertEqual(sum(today["volume_by_hour"]), today["created"])
        self.assertEqual(today["resolved"], before["resolved"] + 1)
        self.assertEqual(today["first_response"]["count"], before["first_response"]["count"] + 1)
        self.assertEqual(today["resolution"]["count"], before["resolution"]["count"] + 1)
        self.assertEqual(today["csat"]["count"], before["csat"]["count"] + 1)
        self.assertEqual(today["csat"]["average"], round(((before["csat"]["average"] or 0) * before["csat"]["count"] + 3)
                                                         / (before["csat"]["count"] + 1), 2))


if __name__ == "__main__":
    unittest.main()
