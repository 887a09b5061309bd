"""Crash test: post messages at full speed, kill -9 the daemon at a random
moment, restart, and check that every message that got a 200 is stored —
and stored once. Repeated 20 times on the same data directory."""
import http.client
import json
import os
import random
import sqlite3
import threading
import time
import unittest

from sbtest import Daemon, sign, wait_for

ROUNDS = 20
WRITERS = 4


class Writer(threading.Thread):
    def __init__(self, port, secret, prefix):
        super().__init__(daemon=True)
        self.port, self.secret, self.prefix = port, secret, prefix
        self.acked = {}  # external_id -> message_id
        self.stop = False

    def run(self):
        n = 0
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        while not self.stop:
            n += 1
            ext = f"{self.prefix}-{n}"
            body = json.dumps({"external_id": ext, "from": {"id": f"crash-{n % 50}", "name": "Краш Тест"},
                               "text": f"сообщение {n}"}).encode()
            try:
                conn.request("POST", "/api/v1/channels/1/inbound", body=body,
                             headers={"Content-Type": "application/json",
                                      "X-Switchboard-Signature": sign(self.secret, body)})
                resp = conn.getresponse()
                data = resp.read()
                if resp.status == 200:
                    self.acked[ext] = json.loads(data)["message_id"]
            except (OSError, http.client.HTTPException):
                return  # the daemon is gone: whatever was not answered was not promised


class CrashTest(unittest.TestCase):
    def test_kill9_loses_nothing_acknowledged(self):
        rng = random.Random(int(os.environ.get("SB_CRASH_SEED", "0")) or None)
        extra = "[limits]\nrate_per_ip = 0\nrate_per_token = 0\n"
        acked = {}
        with Daemon(config_extra=extra) as d:
            secret = d.api_secret
            self.assertTrue(secret)
            for rnd in range(ROUNDS):
                writers = [Writer(d.port, secret, f"r{rnd}w{i}") for i in range(WRITERS)]
                for w in writers:
                    w.start()
                # Let some messages through, then kill at a random moment.
                wait_for(lambda: sum(len(w.acked) for w in writers) >= 20, timeout=30)
                time.sleep(rng.uniform(0.0, 0.5))
                d.kill()
                for w in writers:
                    w.stop = True
                    w.join(10)
                for w in writers:
                    acked.update(w.acked)
                d.start()
                d.wait_healthy()
                db = sqlite3.connect(f"file:{d.data_dir}/switchboard.db?mode=ro", uri=True)
                try:
                    rows = dict(db.execute(
                        "SELECT external_id, id FROM message WHERE channel_id = 1 AND external_id IS NOT NULL"))
                    dups = db.execute("SELECT COUNT(*) - COUNT(DISTINCT external_id) FROM message "
                                      "WHERE channel_id = 1").fetchone()[0]
                    orphans = db.execute("SELECT COUNT(*) FROM message m LEFT JOIN ticket t "
                                         "ON t.id = m.ticket_id WHERE t.id IS NULL").fetchone()[0]
                finally:
                    db.close()
                missing = [e for e in acked if e not in rows]
                self.assertEqual(missing, [], f"round {rnd}: acknowledged but lost")
                wrong = [e for e, mid in acked.items() if rows[e] != mid]
                self.assertEqual(wrong, [], f"round {rnd}: acknowledged id differs from stored id")
                self.assertEqual(dups, 0)
                self.assertEqual(orphans, 0)
            self.assertGreater(len(acked), ROUNDS * 20)
            # A resend of an acknowledged message after all the crashes is still a duplicate.
            ext, mid = next(iter(acked.items()))
            body = json.dumps({"external_id": ext, "from": {"id": "crash-x"}, "text": "again"}).encode()
            status, _, res = d.req("POST", "/api/v1/channels/1/inbound", raw=body,
                                   headers={"X-Switchboard-Signature": sign(secret, body)})
            self.assertEqual(status, 200)
            self.assertTrue(res["duplicate"])
            self.assertEqual(res["message_id"], mid)
        print(f"crash test: {ROUNDS} kills, {len(acked)} acknowledged messages, none lost")


    def test_sigterm_under_load_keeps_everything_acknowledged(self):
        """Graceful stop while writers are busy: the daemon stops accepting,
        answers what it stored, commits and exits 0; nothing acknowledged is
        missing after the restart."""
        extra = "[limits]\nrate_per_ip = 0\nrate_per_token = 0\n"
        with Daemon(config_extra=extra) as d:
            writers = [Writer(d.port, d.api_secret, f"term-w{i}") for i in range(WRITERS)]
            for w in writers:
                w.start()
            wait_for(lambda: sum(len(w.acked) for w in writers) >= 200, timeout=30)
            d.stop()  # SIGTERM; asserts exit code 0
            for w in writers:
                w.stop = True
                w.join(10)
            acked = {}
            for w in writers:
                acked.update(w.acked)
            db = sqlite3.connect(f"file:{d.data_dir}/switchboard.db?mode=ro", uri=True)
            try:
                rows = dict(db.execute("SELECT external_id, id FROM message WHERE channel_id = 1"))
            finally:
                db.close()
            self.assertEqual([e for e in acked if rows.get(e) != acked[e]], [])
            d.start()
            d.wait_healthy()


if __name__ == "__main__":
    unittest.main()
