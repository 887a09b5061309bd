"""GET /api/v1/dashboard and the `dashboard` stream event: the supervisors' live figures.

Live work through the API channel and the REST API moves the counters (a message arrives, an
agent comes online and gets the ticket, replies, resolves, the customer rates); the stream carries
the snapshot to supervisors only. After a restart the figures of the day are read back from the
store, and SLA states come from tickets written into the store at chosen instants."""
import datetime
import json
import os
import shutil
import sqlite3
import struct
import tempfile
import time
import unittest
import zoneinfo

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


def tzif(transitions, offsets):
    """A TZif version 2 file (RFC 8536) with `transitions` [(UTC seconds, type)] between the local
    time types `offsets` (seconds east of UTC); its footer is empty: the last type stays in effect."""
    def header(timecnt, typecnt, charcnt):
        return b"TZif2" + bytes(15) + struct.pack(">6I", 0, 0, 0, timecnt, typecnt, charcnt)
    v1 = header(0, 1, 4) + struct.pack(">iBB", 0, 0, 0) + b"AAA\0"
    v2 = header(len(transitions), len(offsets), 4)
    v2 += b"".join(struct.pack(">q", at) for at, _ in transitions) + bytes(t for _, t in transitions)
    v2 += b"".join(struct.pack(">iBB", off, 0, 0) for off in offsets) + b"AAA\0"
    return v1 + v2 + b"\n\n"


def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class TimeZoneTest(unittest.TestCase):
    """The installation's time zone (setting `timezone`) decides the dashboard's day. Expected
    figures are computed from the store's rows with Python's own zoneinfo reading the same TZif
    files, so no expectation mirrors the daemon's code."""

    @classmethod
    def setUpClass(cls):
        cls.tzdir = tempfile.mkdtemp(prefix="sbtz-")
        os.makedirs(os.path.join(cls.tzdir, "Asia"))
        shutil.copy("/usr/share/zoneinfo/Asia/Tokyo", os.path.join(cls.tzdir, "Asia", "Tokyo"))
        # Two zones whose today is a day the clocks change, at local 02:00 (`now` is about local
        # noon): forward to 03:00 (a 23-hour day) and back to 01:00 (a 25-hour day).
        now_s = now_ms() // 1000
        base = (round((12 * 3600 - now_s % 86400) / 3600) * 3600 + 12 * 3600) % 86400 - 12 * 3600
        midnight = now_s - (now_s + base) % 86400
        cls.change = midnight + 2 * 3600  # UTC seconds
        os.makedirs(os.path.join(cls.tzdir, "Test"))
        for name, after in (("Forward", base + 3600), ("Back", base - 3600)):
            with open(os.path.join(cls.tzdir, "Test", name), "wb") as f:
                f.write(tzif([(cls.change, 1)], [base, after]))
        cls.d = Daemon(env={"SB_TZDIR": cls.tzdir})
        cls.d.__enter__()
        cls.admin = cls.d.token(DEMO_ADMIN[0])

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)
        shutil.rmtree(cls.tzdir)

    def zone(self, name):
        if name == "UTC":
            return datetime.timezone.utc
        with open(os.path.join(self.tzdir, name), "rb") as f:
            return zoneinfo.ZoneInfo.from_file(f, key=name)

    def day(self, name, at_ms):
        """[start, end) of the local day holding `at_ms`, in ms."""
        tz = self.zone(name)
        local = datetime.datetime.fromtimestamp(at_ms / 1000, tz)
        start = datetime.datetime(local.year, local.month, local.day, tzinfo=tz)
        end = datetime.datetime.combine(local.date() + datetime.timedelta(days=1), datetime.time(), tzinfo=tz)
        return int(start.timestamp() * 1000), int(end.timestamp() * 1000)

    def expected(self, name, skip=()):
        """The day's figures from the store's rows (ticket ids in `skip` left out)."""
        start, end = self.day(name, now_ms())
        tz = self.zone(name)
        db = sqlite3.connect(f"file:{os.path.join(self.d.data_dir, 'switchboard.db')}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT id, created_at, resolved_at, csat_at, tags FROM ticket").fetchall()
        finally:
            db.close()
        hours = [0] * 24
        created = resolved = csat = 0
        for tid, c, r, a, tags in rows:
            if tid in skip:
                continue
            if start <= c < end and "blacklisted" not in json.loads(tags or "[]"):
                created += 1
                hours[datetime.datetime.fromtimestamp(c / 1000, tz).hour] += 1
            resolved += r is not None and start <= r < end
            csat += a is not None and start <= a < end
        return {"day_start": iso(start), "created": created, "volume_by_hour": hours, "resolved": resolved,
                "csat": csat}

    def today(self):
        st, _, b = self.d.req("GET", "/api/v1/dashboard", token=self.admin)
        self.assertEqual(st, 200, b)
        t = b["today"]
        return {"time_zone": t["time_zone"], "day_start": t["day_start"], "created": t["created"],
                "volume_by_hour": t["volume_by_hour"], "resolved": t["resolved"], "csat": t["csat"]["count"]}

    def set_zone(self, name):
        st, _, b = self.d.req("PATCH", "/api/v1/settings", {"timezone": name}, token=self.admin)
        self.assertEqual((st, b["settings"]["timezone"]), (200, name), b)
        # The figures of the new day are read from the store after the commit.
        return wait_for(lambda: (lambda t: t if t["time_zone"] == name else None)(self.today()),
                        msg=f"the dashboard to count in {name}")

    def insert(self, tickets):
        """Writes tickets [(created, resolved or None)] into the stopped daemon's store; their ids."""
        db = sqlite3.connect(os.path.join(self.d.data_dir, "switchboard.db"))
        ids = []
        try:
            with db:
                now = now_ms()
                contact = db.execute("INSERT INTO contact (name, created_at, updated_at) VALUES ('Зона', ?, ?)",
                                     (now, now)).lastrowid
                number = db.execute("SELECT COALESCE(MAX(number), 0) FROM ticket").fetchone()[0]
                for created, resolved in tickets:
                    number += 1
                    ids.append(db.execute(
                        "INSERT INTO ticket (number, contact_id, channel_id, status, priority, created_at, updated_at, "
                        "resolved_at, csat_score, csat_at) VALUES (?, ?, 1, ?, 'normal', ?, ?, ?, ?, ?)",
                        (number, contact, "resolved" if resolved else "closed", created, now, resolved,
                         4 if resolved else None, resolved)).lastrowid)
        finally:
            db.close()
        return ids

    def assert_today(self, got, name, skip=(), plus=None):
        want = self.expected(name, skip)
        for key, value in (plus or {}).items():
            if key == "hours":
                for h in value:
                    want["volume_by_hour"][h] += 1
            else:
                want[key] += value
        self.assertEqual({k: v for k, v in got.items() if k != "time_zone"}, want)
        self.assertEqual(sum(got["volume_by_hour"]), got["created"])

    def test_1_setting_validated(self):
        st, _, b = self.d.req("GET", "/api/v1/settings", token=self.admin)
        self.assertEqual((st, b["settings"]["timezone"]), (200, "UTC"))
        for bad in ("Mars/Olympus", "../../etc/passwd", "", "asia/tokyo", 9, None, ["Asia/Tokyo"]):
            st, _, b = self.d.req("PATCH", "/api/v1/settings", {"timezone": bad, "company_name": "Не сохранится"},
                                  token=self.admin)
            self.assertEqual(st, 422, (bad, b))
            self.assertEqual(b["error"]["code"], "validation_failed", b)
            self.assertTrue(b["error"]["message"].startswith("field 'timezone'"), b)
        st, _, b = self.d.req("GET", "/api/v1/settings", token=self.admin)
        self.assertEqual((b["settings"]["timezone"], b["settings"]["company_name"]), ("UTC", ""))
        st, _, b = self.d.req("PATCH", "/api/v1/settings", {"timezone": "Asia/Tokyo"},
                              token=self.d.token(DEMO_BORIS[0]))  # a supervisor
        self.assertEqual(st, 403, b)

    def test_2_local_midnight(self):
        # Tokyo is +09 all year: its midnight is 15:00 UTC.
        midnight, _ = self.day("Asia/Tokyo", now_ms())
        self.d.stop()
        after, before = self.insert([(midnight + 30 * 60000, midnight + 40 * 60000),  # 00:30 today
                                     (midnight - 30 * 60000, midnight - 20 * 60000)])  # 23:30 yesterday
        self.d.start()
        utc = self.today()
        self.assertEqual(utc["time_zone"], "UTC")
        self.assert_today(utc, "UTC")
        tokyo = self.set_zone("Asia/Tokyo")
        self.assertEqual(tokyo["day_start"], iso(midnight))
        # The ticket of 00:30 counts, in the hour 00-01; the one of 23:30 yesterday does not.
        self.assert_today(tokyo, "Asia/Tokyo", skip=(after, before),
                          plus={"created": 1, "resolved": 1, "csat": 1, "hours": [0]})
        # In UTC both are on one day (if Tokyo's midnight was today at 15:00 UTC) or on none.
        in_utc = sum(self.day("UTC", now_ms())[0] <= midnight + m < self.day("UTC", now_ms())[1] for m in (-1, 1))
        self.assertIn(in_utc, (0, 2))
        self.assertNotEqual(tokyo["created"] - self.expected("Asia/Tokyo", skip=(after, before))["created"],
                            utc["created"] - self.expected("UTC", skip=(after, before))["created"])
        # A live ticket counts in Tokyo's hour of now.
        hour = datetime.datetime.now(self.zone("Asia/Tokyo")).hour
        st, _, b = inbound(self.d, {"external_id": "tz-1", "from": {"id": "tz-customer"}, "text": "Добрый день"})
        self.assertEqual(st, 200, b)
        live = wait_for(lambda: (lambda t: t if t["created"] == tokyo["created"] + 1 else None)(self.today()),
                        msg="the live ticket counted")
        self.assertEqual(live["volume_by_hour"][hour], tokyo["volume_by_hour"][hour] + 1)
        # A restart reads the setting and the same day back.
        self.d.restart()
        again = self.today()
        self.assertEqual((again["time_zone"], again["day_start"]), ("Asia/Tokyo", iso(midnight)))
        self.assert_today(again, "Asia/Tokyo")
        # Back to UTC: counted again for the UTC day, without a restart.
        self.assert_today(self.set_zone("UTC"), "UTC")

    def test_3_clocks_change_today(self):
        # Tickets at 01:30 and 03:30 wall time on the forward day (01:30 twice on the back day) and
        # one each side of the next midnight of either zone.
        c = self.change * 1000
        self.d.stop()
        self.insert([(c - 30 * 60000, None), (c + 30 * 60000, None), (c + 21 * 3600000 - 60000, None),
                     (c + 21 * 3600000 + 60000, None), (c + 23 * 3600000 - 60000, None),
                     (c + 23 * 3600000 + 60000, None)])
        self.d.start()
        forward = self.set_zone("Test/Forward")
        self.assertEqual(forward["day_start"], iso(c - 2 * 3600000))
        self.assert_today(forward, "Test/Forward")
        self.assertEqual(forward["volume_by_hour"][2], 0)  # 02:00-03:00 never came
        self.assertGreaterEqual(forward["volume_by_hour"][3], 1)
        # The 23-hour day ends at c + 21 h: a minute before counts (23:59), a minute after does not.
        self.assertGreaterEqual(forward["volume_by_hour"][23], 1)
        back = self.set_zone("Test/Back")
        self.assertEqual(back["day_start"], iso(c - 2 * 3600000))
        self.assert_today(back, "Test/Back")
        self.assertGreaterEqual(back["volume_by_hour"][1], 2)  # 01:00-02:00 came twice
        self.assertEqual(back["created"] - forward["created"], 2)  # the 25-hour day has two more
        self.set_zone("UTC")

    def test_4_rolls_over_at_local_midnight(self):
        # A zone whose midnight comes in 4 s: the daemon has no virtual clock, so the test waits.
        midnight = now_ms() // 1000 + 4
        offset = (-midnight % 86400 + 43200) % 86400 - 43200
        with open(os.path.join(self.tzdir, "Test", "Soon"), "wb") as f:
            f.write(tzif([], [offset]))
        before = self.set_zone("Test/Soon")
        self.assertIn(before["day_start"], (iso((midnight - 86400) * 1000), iso(midnight * 1000)))
        after = wait_for(lambda: (lambda t: t if t["day_start"] == iso(midnight * 1000) else None)(self.today()),
                         timeout=15, msg="the day to roll over at local midnight")
        self.assertEqual((after["created"], after["volume_by_hour"], after["resolved"]), (0, [0] * 24, 0))
        self.set_zone("UTC")


if __name__ == "__main__":
    unittest.main()
