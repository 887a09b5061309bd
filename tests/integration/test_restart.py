"""Durability across a graceful restart, pending callbacks surviving it, and
online backups."""
import os
import shutil
import sqlite3
import tempfile
import unittest

from sbtest import DEMO_ADMIN, DEMO_ANNA, CallbackServer, Daemon, chat_session, chat_ws, inbound, wait_for


class RestartTest(unittest.TestCase):
    def test_everything_survives_a_restart(self):
        with Daemon() as d:
            tok = d.token(DEMO_ANNA[0])
            session = d.login(*DEMO_ADMIN)
            numbers = []
            for i in range(3):
                st, h, b = inbound(d, {"external_id": f"r-{i}", "from": {"id": f"cust-{i}", "name": f"Клиент {i}"},
                                       "text": f"сообщение {i}"})
                self.assertEqual(st, 200, b)
                numbers.append(b["ticket_number"])
            st, h, r = d.req("POST", f"/api/v1/tickets/{numbers[0]}/messages", {"text": "заметка", "kind": "note"},
                             token=tok)
            self.assertEqual(st, 201, r)
            st, h, p = d.req("PATCH", f"/api/v1/tickets/{numbers[1]}", {"priority": "urgent", "tags": ["x", "y"]},
                             token=tok)
            self.assertEqual(st, 200, p)
            st, h, c = d.req("POST", "/api/v1/contacts", {"name": "Сохранённый", "email": "keep@example.com"},
                             token=tok)
            self.assertEqual(st, 201, c)
            visitor = chat_session(d)
            ws = chat_ws(d, visitor["token"])
            try:
                ws.send_json({"type": "message", "client_id": "k1", "text": "из чата"})
                ack = ws.recv_until(lambda m: m.get("type") == "ack")
            finally:
                ws.close()
            numbers.append(ack["ticket_number"])
            st, h, before = d.req("GET", "/api/v1/tickets?limit=200", token=tok)
            self.assertEqual(st, 200, before)
            details = {n: d.req("GET", f"/api/v1/tickets/{n}", token=tok)[2] for n in numbers}
            old_port = d.port

            d.stop()  # SIGTERM, exit code 0 asserted
            self.assertFalse(d.running())
            d.start()
            self.assertEqual(d.log().count("Demo data created"), 1, "the demo seed must not run twice")
            self.assertIsNotNone(d.port)
            del old_port

            st, h, after = d.req("GET", "/api/v1/tickets?limit=200", token=tok)  # the token survived
            self.assertEqual(st, 200, after)
            self.assertEqual(after["tickets"], before["tickets"])
            for n, want in details.items():
                st, h, got = d.req("GET", f"/api/v1/tickets/{n}", token=tok)
                self.assertEqual(st, 200, got)
                self.assertEqual(got, want)
            st, h, c2 = d.req("GET", f"/api/v1/contacts/{c['contact']['id']}", token=tok)
            self.assertEqual(c2, c)
            # The session cookie survived as well.
            st, h, me = session.req("GET", "/api/v1/auth/me")
            self.assertEqual(st, 200, me)

            # Numbers continue; the same customer still joins the open ticket.
            st, h, b = inbound(d, {"external_id": "r-new", "from": {"id": "cust-new"}, "text": "после рестарта"})
            self.assertEqual(st, 200, b)
            self.assertEqual(b["ticket_number"], max(numbers) + 1)
            st, h, b = inbound(d, {"external_id": "r-again", "from": {"id": "cust-0"}, "text": "снова я"})
            self.assertEqual(b["ticket_number"], numbers[0])
            # Idempotency survives: a retried pre-restart message is a duplicate.
            st, h, b = inbound(d, {"external_id": "r-1", "from": {"id": "cust-1"}, "text": "сообщение 1"})
            self.assertTrue(b["duplicate"])
            self.assertEqual(b["ticket_number"], numbers[1])
            # The visitor token (signed with the stored secret) still works.
            s2 = chat_session(d, token=visitor["token"])
            self.assertEqual(s2["visitor_id"], visitor["visitor_id"])
            self.assertEqual([m["text"] for m in s2["messages"]], ["из чата"])

    def test_pending_callback_is_delivered_after_restart(self):
        with CallbackServer(statuses=[503], retry_after=1) as cb, Daemon() as d:
            ch = d.add_api_channel(name="Durable", callback_url=cb.url)
            cb.secret = ch["secret"]
            tok = d.token(DEMO_ANNA[0])
            st, h, b = inbound(d, {"external_id": "p1", "from": {"id": "p"}, "text": "hi"}, channel=ch["id"],
                               secret=ch["secret"])
            self.assertEqual(st, 200, b)
            st, h, r = d.req("POST", f"/api/v1/tickets/{b['ticket_number']}/messages", {"text": "survive me"},
                             token=tok)
            self.assertEqual(st, 201, r)
            cb.wait_requests(1, timeout=20)
            d.stop()
            n_before = len(cb.snapshot())
            cb.set_statuses([])  # 200 from now on
            d.start()

            def status():
                st, h, t = d.req("GET", f"/api/v1/tickets/{b['ticket_number']}", token=tok)
                return [m for m in t["messages"] if m["id"] == r["message"]["id"]][0]["delivery_status"]

            wait_for(lambda: status() == "sent", timeout=30, msg="the pending callback to go out after restart")
            reqs = cb.snapshot()
            self.assertGreater(len(reqs), n_before)
            self.assertTrue(all(q["sig_ok"] for q in reqs))
            self.assertEqual(reqs[-1]["json"]["message"]["text"], "survive me")
            self.assertEqual(len({q["headers"]["X-Switchboard-Delivery"] for q in reqs}), 1)

    def test_online_backup(self):
        with Daemon() as d:
            tok = d.token(DEMO_ANNA[0])
            for i in range(5):
                st, h, b = inbound(d, {"external_id": f"b-{i}", "from": {"id": f"b{i}"}, "text": f"backup {i}"})
                self.assertEqual(st, 200, b)
            st, h, lst = d.req("GET", "/api/v1/tickets?limit=200", token=tok)
            path = os.path.join(d.tmp, "backup.db")
            wal = os.path.join(d.data_dir, "switchboard.db-wal")
            wal_inode = os.stat(wal).st_ino
            p = d.cli("db", "backup", path)
            self.assertEqual(p.returncode, 0, p.stderr)
            # The CLI's connection closed without taking the daemon's WAL away:
            # the sync thread flushes the same file, and writes still succeed.
            self.assertEqual(os.stat(wal).st_ino, wal_inode)
            st, h, b = inbound(d, {"external_id": "b-after", "from": {"id": "b-after"}, "text": "after backup"})
            self.assertEqual(st, 200, b)
            self.assertTrue(os.path.exists(path))
            db = sqlite3.connect(path)
            try:
                self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
                self.assertEqual(db.execute("SELECT COUNT(*) FROM ticket").fetchone()[0], len(lst["tickets"]))
                self.assertEqual(db.execute("SELECT COUNT(*) FROM message").fetchone()[0], 5)
                self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "delete")
            finally:
                db.close()
            # The daemon kept serving; an existing file is never overwritten.
            self.assertEqual(d.req("GET", "/healthz")[0], 200)
            p = d.cli("db", "backup", path)
            self.assertNotEqual(p.returncode, 0)
            # The backup is a working data dir.
            restored = tempfile.mkdtemp(prefix="sbtest-restored-")
            self.addCleanup(shutil.rmtree, restored, True)
            shutil.move(path, os.path.join(restored, "switchboard.db"))
        with Daemon(data_dir=restored) as r:
            tok = r.token(DEMO_ANNA[0])
            st, h, lst2 = r.req("GET", "/api/v1/tickets?limit=200", token=tok)
            self.assertEqual(st, 200, lst2)
            self.assertEqual(lst2["tickets"], lst["tickets"])


if __name__ == "__main__":
    unittest.main()
