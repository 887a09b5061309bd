#!/usr/bin/env python3
"""Times GET /api/v1/metrics/summary and /metrics/report on a large store.

Seeds a fresh data directory with TICKETS tickets spread over a year (two teams, three agents, two
channels, up to three of ten tags each) and 12 event-log rows per ticket (8 message.created, the rest
ticket.* and sla.*), written straight into SQLite while the daemon is stopped, then asks for one day,
one month and one year, by each grouping and as CSV, and prints the wall time of each request. Then it
asks for a year's summary again while another thread posts inbound messages through the API channel one
after another, and prints how long those took: the reports run on the store's reader thread, so the
messages should not wait for them.

    SB_BINARY=build/switchboard PYTHONPATH=tests/integration python3 bench/reports.py [TICKETS]
"""
import json
import os
import threading
import random
import sqlite3
import sys
import time
import urllib.parse

from sbtest import DEMO_BORIS, Daemon, inbound

YEAR_MS = 365 * 24 * 3600 * 1000
START = 1735689600000  # 2025-01-01T00:00:00Z
TAGS = ["delivery", "refund", "vip", "b2b", "возврат", "доставка", "оплата", "bug", "press", "wholesale"]


def seed(path, tickets, rnd):
    db = sqlite3.connect(path)
    with db:
        db.execute("INSERT INTO contact (name, created_at, updated_at) VALUES ('Bench', ?, ?)", (START, START))
        contact = db.execute("SELECT max(id) FROM contact").fetchone()[0]
        base = db.execute("SELECT COALESCE(max(number), 0) FROM ticket").fetchone()[0]
        rows, events = [], []
        for i in range(tickets):
            created = START + rnd.randrange(YEAR_MS)
            first = created + rnd.randrange(1, 4 * 3600 * 1000)
            resolved = first + rnd.randrange(1, 48 * 3600 * 1000) if rnd.random() < 0.9 else None
            tags = json.dumps(rnd.sample(TAGS, rnd.randrange(4)), ensure_ascii=False)
            rows.append((base + i + 1, contact, rnd.choice((1, 2)), "resolved" if resolved else "closed",
                         rnd.choice((1, 2)), rnd.choice((1, 2, 3)), tags, created, created, first, resolved,
                         None if resolved else first,
                         created + 1 if resolved and rnd.random() < 0.3 else None, rnd.randrange(1, 6)))
        db.executemany(
            "INSERT INTO ticket (number, contact_id, channel_id, status, priority, team_id, assignee_id, tags, "
            "created_at, updated_at, first_response_at, resolved_at, closed_at, csat_at, csat_score) "
            "VALUES (?, ?, ?, ?, 'normal', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        first_id = db.execute("SELECT min(id) FROM ticket WHERE number > ?", (base,)).fetchone()[0]
        for i, r in enumerate(rows):
            tid, created, first = first_id + i, r[7], r[9]
            events.append((created, tid, "ticket.created", "{}"))
            events.append((created + 1, tid, "ticket.assigned", json.dumps({"to": r[5]})))
            if rnd.random() < 0.1:
                events.append((created + 2, tid, "ticket.assigned", json.dumps({"to": rnd.choice((1, 2, 3))})))
            else:
                events.append((created + 2, tid, "ticket.updated", "{}"))
            events.append((first, tid, rnd.choice(("sla.met", "sla.met", "sla.met", "sla.missed")),
                           json.dumps({"clock": "first_response"})))
            for k in range(8):
                events.append((created + k * 60000, tid, "message.created", "{}"))
        db.executemany("INSERT INTO event (at, actor_kind, entity, entity_id, type, data) "
                       "VALUES (?, 'system', 'ticket', ?, ?, ?)", events)
    db.close()
    return len(events)


def main():
    tickets = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    rnd = random.Random(1)
    with Daemon() as d:
        token = d.token(DEMO_BORIS[0])
        d.stop()
        t = time.monotonic()
        n = seed(os.path.join(d.data_dir, "switchboard.db"), tickets, rnd)
        print(f"seeded {tickets} tickets and {n} event rows in {time.monotonic() - t:.1f} s")
        d.start()
        periods = {"day": ("2025-06-02T00:00:00Z", "2025-06-03T00:00:00Z"),
                   "month": ("2025-06-01T00:00:00Z", "2025-07-01T00:00:00Z"),
                   "year": ("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z")}
        asks = [("summary", "/api/v1/metrics/summary", {})]
        for by in ("agent", "team", "channel", "tag"):
            asks.append((f"report by={by}", "/api/v1/metrics/report", {"by": by}))
        asks.append(("report by=tag csv", "/api/v1/metrics/report", {"by": "tag", "format": "csv"}))
        for pname, (start, end) in periods.items():
            for name, path, extra in asks:
                q = urllib.parse.urlencode({"from": start, "to": end, **extra})
                times = []
                for _ in range(3):
                    t = time.monotonic()
                    st, _, body = d.req("GET", f"{path}?{q}", token=token)
                    times.append(time.monotonic() - t)
                    assert st == 200, (st, body)
                print(f"{pname:5} {name:20} best {min(times) * 1000:7.1f} ms  worst {max(times) * 1000:7.1f} ms")
        concurrent_inbound(d, token, periods["year"])


def concurrent_inbound(d, token, period):
    """Inbound messages posted one after another while a year's summary runs."""
    q = urllib.parse.urlencode({"from": period[0], "to": period[1]})
    for rnd in range(3):
        done = threading.Event()
        report = {}

        def ask():
            t = time.monotonic()
            report["status"] = d.req("GET", f"/api/v1/metrics/summary?{q}", token=token)[0]
            report["took"] = time.monotonic() - t
            done.set()

        th = threading.Thread(target=ask)
        th.start()
        time.sleep(0.05)  # the report is under way
        lat = []
        while not done.is_set():
            t = time.monotonic()
            st, _, body = inbound(d, {"external_id": f"bench-{rnd}-{len(lat)}", "from": {"id": f"c{len(lat) % 50}"},
                                      "text": "during a report"})
            lat.append(time.monotonic() - t)
            assert st == 200, (st, body)
        th.join()
        assert report["status"] == 200, report
        lat.sort()
        print(f"year summary {report['took'] * 1000:7.1f} ms; meanwhile {len(lat)} inbound messages: "
              f"median {lat[len(lat) // 2] * 1000:6.1f} ms  max {lat[-1] * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
