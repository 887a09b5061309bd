"""GET /api/v1/metrics/report: the summary's figures of a period by agent, team, channel kind or tag, with a
total, as JSON and as a CSV download.

Tickets, event-log rows and survey answers are written into the store at chosen instants while the daemon is
stopped, so every figure is asserted exactly: counts, medians and 90th percentiles in calendar and business time,
SLA met/missed per clock and together, reassignments, CSAT. The CSV is parsed with Python's csv module and must
say what the JSON says."""
import csv
import datetime
import io
import json
import os
import sqlite3
import unittest
import urllib.parse

from sbtest import DEMO_ADMIN, DEMO_ANNA, DEMO_BORIS, Daemon

REPORT = "/api/v1/metrics/report"
SUMMARY = "/api/v1/metrics/summary"
# Mon-Fri 09:00-18:00 in Moscow (UTC+3 all year): 06:00-15:00 UTC.
CALENDAR = {"name": "Офис", "time_zone": "Europe/Moscow",
            "hours": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}}
# Monday 2 June 2025 up to, not including, Monday 9 June.
PERIOD = {"from": "2025-06-02T00:00:00Z", "to": "2025-06-09T00:00:00Z"}
REFUND = 'возврат, "срочно"'  # a tag that needs quoting in CSV


def ms(text):
    dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(dt.timestamp() * 1000)


def url(path=REPORT, **params):
    return path + "?" + urllib.parse.urlencode(params)


def durations(count, median=None, p90=None, business=None):
    return {"count": count, "median_minutes": median, "p90_minutes": p90, "business_median_minutes": business}


def pct(met, missed):
    return round(1000 * met / (met + missed)) / 10 if met + missed else None


def sla(fr=(0, 0), nr=(0, 0), res=(0, 0)):
    out = {name: {"met": m, "missed": x, "met_pct": pct(m, x)}
           for name, (m, x) in (("first_response", fr), ("next_response", nr), ("resolution", res))}
    met, missed = fr[0] + nr[0] + res[0], fr[1] + nr[1] + res[1]
    out["all"] = {"met": met, "missed": missed, "met_pct": pct(met, missed)}
    return out


def figures(created=0, resolved=0, fr=durations(0), res=durations(0), sla_=None, reassignments=0, csat=(0, None)):
    return {"tickets_created": created, "tickets_resolved": resolved, "first_response": fr, "resolution": res,
            "sla": sla_ or sla(), "reassignments": reassignments, "csat": {"count": csat[0], "average": csat[1]}}


class ReportsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.d.__enter__()
        d = cls.d
        cls.admin = d.token(DEMO_ADMIN[0])
        cls.anna_token = d.token(DEMO_ANNA[0])  # agent
        cls.boris_token = d.token(DEMO_BORIS[0])  # supervisor
        st, _, b = d.req("GET", "/api/v1/agents", token=cls.admin)
        assert st == 200, (st, b)
        ids = {a["email"]: a["id"] for a in b["agents"]}
        cls.admin_id, cls.anna, cls.boris = ids[DEMO_ADMIN[0]], ids[DEMO_ANNA[0]], ids[DEMO_BORIS[0]]
        st, _, b = d.req("POST", "/api/v1/calendars", CALENDAR, token=cls.admin)
        assert st == 201, (st, b)
        st, _, b = d.req("PATCH", "/api/v1/teams/1", {"routing": {"calendar_id": b["calendar"]["id"]}},
                         token=cls.admin)
        assert st == 200, (st, b)
        second_api = d.add_api_channel("Второй API")["id"]  # another channel of the kind "api"
        d.stop()
        db = sqlite3.connect(os.path.join(d.data_dir, "switchboard.db"))
        try:
            with db:
                cls.seed(db, second_api)
        finally:
            db.close()
        d.start()

    @classmethod
    def seed(cls, db, second_api):
        now = ms("2025-06-20T00:00:00Z")

        def agent(email, name):
            return db.execute("INSERT INTO agent (email, name, role, active, created_at, updated_at) "
                              "VALUES (?, ?, 'agent', 0, ?, ?)", (email, name, now, now)).lastrowid

        cls.gone = agent("gone@example.com", "Ушедший")  # inactive, has figures: listed
        agent("idle@example.com", "Idle")  # inactive, no figures: not listed
        contact = db.execute("INSERT INTO contact (name, created_at, updated_at) VALUES ('Клиент', ?, ?)",
                             (now, now)).lastrowid

        def ticket(number, channel, team, assignee, tags, created, first=None, resolved=None):
            status = "resolved" if resolved else "closed"
            return db.execute(
                "INSERT INTO ticket (number, contact_id, channel_id, status, priority, team_id, assignee_id, tags, "
                "created_at, updated_at, first_response_at, resolved_at, closed_at) "
                "VALUES (?, ?, ?, ?, 'normal', ?, ?, ?, ?, ?, ?, ?, ?)",
                (number, contact, channel, status, team, assignee, json.dumps(tags, ensure_ascii=False), ms(created),
                 now, first and ms(first), resolved and ms(resolved), None if resolved else now)).lastrowid

        # Sales (team 1) has the Moscow calendar, Support (team 2) none. Channel 1 is the demo API channel,
        # 2 the web chat, second_api another API channel.
        t1 = ticket(8001, 1, 1, cls.anna, ["vip", "delivery"], "2025-06-02T07:00:00Z",  # Mon 10:00 Moscow
                    "2025-06-02T07:30:00Z", "2025-06-02T09:00:00Z")  # 30 and 120 min, in business hours too
        t2 = ticket(8002, 2, 1, cls.boris, ["delivery", REFUND], "2025-06-02T14:00:00Z",  # Mon 17:00
                    "2025-06-03T06:30:00Z")  # Tue 09:30: 990 min, in business hours 60 + 30
        t3 = ticket(8003, second_api, 2, cls.boris, [], "2025-06-03T10:00:00Z",
                    "2025-06-03T10:10:00Z", "2025-06-03T12:00:00Z")  # 10 and 120 min
        t4 = ticket(8004, 1, None, None, ["delivery", "delivery", "=1+1"], "2025-06-04T10:00:00Z")
        t5 = ticket(8005, 2, 2, cls.gone, ["vip"], "2025-05-30T10:00:00Z",  # created before the period
                    "2025-05-30T10:05:00Z", "2025-06-05T10:00:00Z")  # resolved in it: 8640 min
        t6 = ticket(8006, 1, 1, cls.admin_id, ["delivery"], "2025-06-09T00:00:00Z",  # at `to`: outside
                    "2025-06-09T00:10:00Z", "2025-06-09T01:00:00Z")
        t7 = ticket(8007, 1, 1, cls.anna, [], "2025-06-05T06:00:00Z",  # Thu 09:00 Moscow
                    "2025-06-05T06:20:00Z", "2025-06-05T07:00:00Z")  # 20 and 60 min

        def event(tid, at, etype, data):
            db.execute("INSERT INTO event (at, actor_kind, actor_id, entity, entity_id, type, data) "
                       "VALUES (?, 'system', NULL, 'ticket', ?, ?, ?)", (ms(at), tid, etype, json.dumps(data)))

        event(t1, "2025-06-02T07:00:00Z", "ticket.assigned", {"to": cls.anna, "team_id": 1})
        event(t1, "2025-06-02T07:30:00Z", "sla.met", {"clock": "first_response"})
        event(t1, "2025-06-02T09:00:00Z", "sla.met", {"clock": "resolution"})
        event(t2, "2025-06-02T14:00:00Z", "ticket.assigned", {"to": cls.anna, "team_id": 1})
        event(t2, "2025-06-02T14:30:00Z", "sla.missed", {"clock": "first_response"})
        event(t2, "2025-06-02T15:00:00Z", "ticket.assigned", {"from": cls.anna, "to": cls.boris})  # reassigned
        event(t3, "2025-06-03T10:00:00Z", "ticket.assigned", {"to": cls.boris, "team_id": 2})
        event(t3, "2025-06-03T10:10:00Z", "sla.met", {"clock": "first_response"})
        event(t4, "2025-06-04T10:00:00Z", "ticket.assigned", {"to": cls.anna})
        event(t4, "2025-06-04T11:00:00Z", "ticket.assigned", {"from": cls.anna, "to": None})  # reassigned
        event(t5, "2025-05-30T10:00:00Z", "ticket.assigned", {"to": cls.gone, "team_id": 2})
        event(t5, "2025-06-04T10:00:00Z", "sla.missed", {"clock": "resolution"})
        event(t6, "2025-06-09T00:10:00Z", "sla.met", {"clock": "first_response"})  # outside
        event(t7, "2025-06-05T06:00:00Z", "ticket.assigned", {"to": cls.anna, "team_id": 1})
        event(t7, "2025-06-05T06:20:00Z", "sla.met", {"clock": "first_response"})
        event(t7, "2025-06-05T07:00:00Z", "sla.met", {"clock": "resolution"})
        for tid, score, at in ((t1, 5, "2025-06-02T10:00:00Z"), (t3, 3, "2025-06-03T13:00:00Z"),
                               (t7, 4, "2025-06-05T08:00:00Z"), (t5, 2, "2025-06-09T00:00:00Z")):  # the last: outside
            db.execute("UPDATE ticket SET csat_requested_at = ?, csat_score = ?, csat_at = ? WHERE id = ?",
                       (ms(at) - 1000, score, ms(at), tid))

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def get(self, path, token=None):
        st, h, b = self.d.req("GET", path, token=token or self.boris_token)
        self.assertEqual(st, 200, b)
        return h, b

    def report(self, by, **params):
        return self.get(url(by=by, **{**PERIOD, **params}))[1]

    def rows(self, report):
        return [(r["key"], r["name"]) for r in report["rows"]]

    def assert_rows(self, report, expected):
        """expected: [(key, name, figures)] in order."""
        self.assertEqual(self.rows(report), [(k, n) for k, n, _ in expected])
        for row, (key, _, want) in zip(report["rows"], expected):
            got = {k: v for k, v in row.items() if k not in ("key", "name")}
            self.assertEqual(got, want, key)

    # The whole period, every ticket.
    TOTAL = figures(5, 4, durations(4, 20.0, 990.0, 20.0), durations(4, 120.0, 8640.0, 120.0),
                    sla((3, 1), (0, 0), (2, 1)), 2, (3, 4.0))

    def test_by_agent(self):
        r = self.report("agent")
        self.assertEqual((r["from"], r["to"], r["by"]), ("2025-06-02T00:00:00.000Z", "2025-06-09T00:00:00.000Z",
                                                         "agent"))
        self.assert_rows(r, [
            (self.admin_id, "Olga Admin / Ольга Админ", figures()),  # active: listed with zeros
            (self.anna, "Anna Sales / Анна Продажи",
             figures(2, 2, durations(2, 20.0, 30.0, 20.0), durations(2, 60.0, 120.0, 60.0),
                     sla((2, 0), (0, 0), (2, 0)), 0, (2, 4.5))),
            (self.boris, "Boris Support / Борис Поддержка",
             figures(2, 1, durations(2, 10.0, 990.0, 10.0), durations(1, 120.0, 120.0, 120.0),
                     sla((1, 1)), 1, (1, 3.0))),
            (self.gone, "Ушедший", figures(0, 1, res=durations(1, 8640.0, 8640.0, 8640.0), sla_=sla(res=(0, 1)))),
            (None, None, figures(1, reassignments=1)),  # #8004 has no assignee
        ])
        self.assertEqual(r["total"], self.TOTAL)
        # The total is the summary's overall (which has no "all" SLA entry).
        s = self.get(url(SUMMARY, **PERIOD))[1]["overall"]
        total = json.loads(json.dumps(r["total"]))
        del total["sla"]["all"]
        self.assertEqual(total, s)
        # A filter restricts every row and the total.
        f = self.report("agent", team_id=1)
        self.assertEqual(self.rows(f), [(self.admin_id, "Olga Admin / Ольга Админ"),
                                        (self.anna, "Anna Sales / Анна Продажи"),
                                        (self.boris, "Boris Support / Борис Поддержка")])
        self.assertEqual(f["rows"][2]["tickets_created"], 1)
        self.assertEqual(f["rows"][2]["first_response"], durations(1, 990.0, 990.0, 90.0))
        self.assertEqual(f["total"]["tickets_created"], 3)

    def test_by_team(self):
        r = self.report("team")
        self.assert_rows(r, [
            (1, "Sales", figures(3, 2, durations(3, 30.0, 990.0, 30.0), durations(2, 60.0, 120.0, 60.0),
                                 sla((2, 1), (0, 0), (2, 0)), 1, (2, 4.5))),
            (2, "Support", figures(1, 2, durations(1, 10.0, 10.0, 10.0), durations(2, 120.0, 8640.0, 120.0),
                                   sla((1, 0), (0, 0), (0, 1)), 0, (1, 3.0))),
            (None, None, figures(1, reassignments=1)),
        ])
        self.assertEqual(r["total"], self.TOTAL)

    def test_by_channel(self):
        r = self.report("channel")
        self.assert_rows(r, [
            # Both API channels: #8001, #8003 (the second one), #8004, #8007.
            ("api", "api", figures(4, 3, durations(3, 20.0, 30.0, 20.0), durations(3, 120.0, 120.0, 120.0),
                                   sla((3, 0), (0, 0), (2, 0)), 1, (3, 4.0))),
            ("webchat", "webchat", figures(1, 1, durations(1, 990.0, 990.0, 90.0),
                                           durations(1, 8640.0, 8640.0, 8640.0), sla((0, 1), (0, 0), (0, 1)), 1)),
        ])
        self.assertEqual(r["total"], self.TOTAL)

    def test_by_tag(self):
        r = self.report("tag")
        self.assert_rows(r, [
            ("=1+1", "=1+1", figures(1, reassignments=1)),
            # #8001, #8002 and #8004 (tagged twice, counted once).
            ("delivery", "delivery", figures(3, 1, durations(2, 30.0, 990.0, 30.0), durations(1, 120.0, 120.0, 120.0),
                                             sla((1, 1), (0, 0), (1, 0)), 2, (1, 5.0))),
            ("vip", "vip", figures(1, 2, durations(1, 30.0, 30.0, 30.0), durations(2, 120.0, 8640.0, 120.0),
                                   sla((1, 0), (0, 0), (1, 1)), 0, (1, 5.0))),
            (REFUND, REFUND, figures(1, 0, durations(1, 990.0, 990.0, 90.0), sla_=sla((0, 1)), reassignments=1)),
            (None, None, figures(2, 2, durations(2, 10.0, 20.0, 10.0), durations(2, 60.0, 120.0, 60.0),
                                 sla((2, 0), (0, 0), (1, 0)), 0, (2, 3.5))),
        ])
        self.assertEqual(r["total"], self.TOTAL)

    def test_period_offsets_and_empty(self):
        # The same period written with Moscow's offset gives the same report.
        moscow = {"from": "2025-06-02T03:00:00+03:00", "to": "2025-06-09T03:00:00+03:00"}
        self.assertEqual(self.get(url(by="team", **moscow))[1], self.report("team"))
        # A period with nothing: active agents and teams with zeros, no tag rows, no null row.
        empty = {"from": "2024-01-01T00:00:00Z", "to": "2024-01-02T00:00:00Z"}
        r = self.get(url(by="agent", **empty))[1]
        self.assertEqual([k for k, _ in self.rows(r)], [self.admin_id, self.anna, self.boris])
        self.assertEqual(r["total"], figures())
        self.assertEqual(self.get(url(by="tag", **empty))[1]["rows"], [])
        self.assertEqual([k for k, _ in self.rows(self.get(url(by="channel", **empty))[1])], ["api", "webchat"])

    def csv_of(self, by, **params):
        h, text = self.get(url(by=by, format="csv", **{**PERIOD, **params}))
        self.assertEqual(h["content-type"], "text/csv; charset=utf-8")
        self.assertIsInstance(text, str)
        self.assertTrue(text.startswith("\ufeff"), text[:20])  # UTF-8 byte order mark
        body = text[1:]
        self.assertTrue(body.endswith("\r\n"))
        self.assertNotIn("\n", body.replace("\r\n", ""))  # CRLF line ends (no field here holds a line break)
        return h, list(csv.reader(io.StringIO(body, newline=""), delimiter=";" if "delimiter" in params else ","))

    @staticmethod
    def expected_cells(row, decimal="."):
        def num(v):
            return "" if v is None else (str(v) if isinstance(v, int) else ("%.1f" % v).replace(".", decimal))
        fr, res, s = row["first_response"], row["resolution"], row["sla"]["all"]
        return [num(v) for v in (
            row["tickets_created"], row["tickets_resolved"], fr["count"], fr["median_minutes"], fr["p90_minutes"],
            fr["business_median_minutes"], res["median_minutes"], res["p90_minutes"],
            res["business_median_minutes"], s["met"], s["missed"], s["met_pct"], row["csat"]["count"],
            row["csat"]["average"], row["reassignments"])]

    def test_csv_matches_json(self):
        labels = {"agent": "(unassigned)", "team": "(no team)", "tag": "(no tags)"}
        for by in ("agent", "team", "channel", "tag"):
            with self.subTest(by=by):
                h, table = self.csv_of(by)
                self.assertEqual(h["content-disposition"],
                                 f'attachment; filename="report-by-{by}-2025-06-02_2025-06-08.csv"')
                r = self.report(by)
                with_id = by in ("agent", "team")
                header = table[0]
                self.assertEqual(header[0], by.capitalize())
                self.assertEqual(header[1:3], ["ID", "Tickets created"] if with_id else ["Tickets created",
                                                                                         "Tickets resolved"])
                self.assertEqual(len(header), 16 + with_id)
                self.assertEqual(len(table), 1 + len(r["rows"]) + 1)
                for line, row in zip(table[1:], r["rows"]):
                    name = labels[by] if row["key"] is None else row["name"]
                    if name.startswith("="):
                        name = "'" + name  # not run as a formula
                    self.assertEqual(line[0], name)
                    if with_id:
                        self.assertEqual(line[1], "" if row["key"] is None else str(row["key"]))
                    self.assertEqual(line[1 + with_id:], self.expected_cells(row))
                self.assertEqual(table[-1][0], "Total")
                self.assertEqual(table[-1][1 + with_id:], self.expected_cells(r["total"]))
        # The quoted tag survives the round trip, and the raw text quotes it as RFC 4180 says.
        _, text = self.get(url(by="tag", format="csv", **PERIOD))
        self.assertIn('\r\n"возврат, ""срочно""",1,0,1,990.0,990.0,90.0,', text)
        self.assertIn("\r\n\"'=1+1\",1,0,0,", text)

    def test_csv_semicolon_and_russian(self):
        h, table = self.csv_of("agent", delimiter="semicolon", lang="ru")
        self.assertEqual(table[0][:4], ["Оператор", "ID", "Создано обращений", "Решено обращений"])
        r = self.report("agent")
        for line, row in zip(table[1:], r["rows"]):
            self.assertEqual(line[2:], self.expected_cells(row, decimal=","))
        self.assertEqual(table[-2][0], "(без ответственного)")
        self.assertEqual(table[-1][0], "Итого")
        self.assertEqual(table[-1][2:], self.expected_cells(r["total"], decimal=","))
        self.assertEqual(table[-1][2:6], ["5", "4", "4", "20,0"])
        # A one-day period is named by its day; the end is exclusive.
        h, _ = self.csv_of("channel", **{"from": "2025-06-02T00:00:00+03:00", "to": "2025-06-03T00:00:00+03:00"})
        self.assertEqual(h["content-disposition"], 'attachment; filename="report-by-channel-2025-06-02.csv"')

    def test_access_and_validation(self):
        good = {"by": "agent", **PERIOD}
        for fmt in ("json", "csv"):
            st, _, b = self.d.req("GET", url(format=fmt, **good))
            self.assertEqual((st, b["error"]["code"]), (401, "unauthorized"), b)
            st, _, b = self.d.req("GET", url(format=fmt, **good), token=self.anna_token)
            self.assertEqual((st, b["error"]["code"]), (403, "forbidden"), b)
        st, _, b = self.d.req("GET", url(by="bogus"), token=self.anna_token)  # the role comes first
        self.assertEqual(st, 403, b)
        self.get(url(**good), token=self.admin)
        st, _, b = self.d.req("POST", url(**good), token=self.admin)
        self.assertEqual(st, 405, b)

        def invalid(params, name, path=REPORT):
            st, h, b = self.d.req("GET", url(path, **params), token=self.boris_token)
            self.assertEqual(st, 422, (params, b))
            self.assertEqual(h["content-type"], "application/json")
            self.assertEqual(set(b), {"error"})
            self.assertEqual(b["error"]["code"], "validation_failed", b)
            self.assertIn(f"'{name}'", b["error"]["message"], (params, b))

        invalid(PERIOD, "by")
        invalid({"by": "", **PERIOD}, "by")
        invalid({"by": "channel_id", **PERIOD}, "by")
        invalid({"by": "Agent", **PERIOD}, "by")
        invalid({**good, "format": "xlsx"}, "format")
        invalid({**good, "format": "csv", "delimiter": "tab"}, "delimiter")
        invalid({**good, "lang": "de"}, "lang")
        invalid({"by": "agent", "to": PERIOD["to"]}, "from")
        invalid({"by": "agent", "from": "2025-06-02", "to": PERIOD["to"]}, "from")
        invalid({"by": "agent", "from": PERIOD["from"], "to": "tomorrow"}, "to")
        invalid({"by": "agent", "from": PERIOD["to"], "to": PERIOD["from"]}, "to")
        invalid({"by": "agent", "from": "2025-01-01T00:00:00Z", "to": "2026-01-02T00:00:01Z"}, "to")
        invalid({**good, "format": "csv", "from": "2025-13-01T00:00:00Z"}, "from")
        invalid({**good, "team_id": "x"}, "team_id")
        invalid({**good, "agent_id": "999"}, "agent_id")
        invalid({**good, "group": "agent"}, "group")
        # The summary keeps its own parameters.
        invalid({**good}, "by", path=SUMMARY)


if __name__ == "__main__":
    unittest.main()
