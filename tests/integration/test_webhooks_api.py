"""The admins' view of rules' webhooks (/api/v1/webhooks): the recent deliveries from the
outbox with their status, attempts and last error, and the signing secret, shown or
replaced (a new one signs every delivery from then on). Admins only."""
import json
import re
import sqlite3
import unittest

from sbtest import DEMO_ADMIN, DEMO_ANNA, DEMO_BORIS, CallbackServer, Daemon, inbound, wait_for


class WebhooksApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.d.__enter__()
        cls.admin = cls.d.token(DEMO_ADMIN[0])
        cls.anna = cls.d.token(DEMO_ANNA[0])
        cls.boris = cls.d.token(DEMO_BORIS[0])

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def req(self, method, path, body=None, token=None):
        return self.d.req(method, path, body, token=token or self.admin)

    def deliveries(self, query=""):
        st, _, b = self.req("GET", "/api/v1/webhooks/deliveries" + query)
        self.assertEqual(st, 200, b)
        return b["deliveries"]

    def test_1_roles_methods_and_parameters(self):
        for path in ("/api/v1/webhooks/deliveries", "/api/v1/webhooks/secret"):
            st, _, b = self.d.req("GET", path)
            self.assertEqual((st, b["error"]["code"]), (401, "unauthorized"), path)
            for tok in (self.anna, self.boris):
                st, _, b = self.req("GET", path, token=tok)
                self.assertEqual((st, b["error"]["code"]), (403, "forbidden"), path)
        st, _, b = self.req("POST", "/api/v1/webhooks/secret", token=self.boris)
        self.assertEqual(st, 403, b)
        st, h, b = self.req("PUT", "/api/v1/webhooks/secret", {})
        self.assertEqual((st, h["Allow"]), (405, "GET, POST"), b)
        st, h, _ = self.req("DELETE", "/api/v1/webhooks/deliveries")
        self.assertEqual((st, h["Allow"]), (405, "GET"))
        st, _, _ = self.req("GET", "/api/v1/webhooks/nothing")
        self.assertEqual(st, 404)
        st, _, _ = self.req("GET", "/api/v1/webhooksx")
        self.assertEqual(st, 404)
        for q, name in (("?limit=0", "limit"), ("?limit=201", "limit"), ("?limit=x", "limit"),
                        ("?status=lost", "status")):
            st, _, b = self.req("GET", "/api/v1/webhooks/deliveries" + q)
            self.assertEqual(st, 422, (q, b))
            self.assertIn(f"parameter '{name}'", b["error"]["message"])

    def test_2_deliveries_show_status_attempts_and_error(self):
        secret = self.d.cli("config", "webhook-secret", check=True).stdout.strip()
        st, _, b = self.req("GET", "/api/v1/webhooks/secret")
        self.assertEqual((st, b), (200, {"secret": secret}))
        # The receiver fails once (retried), then takes it; the second call is refused for good.
        with CallbackServer(secret=secret, statuses=[503, 200, 404]) as hook:
            st, _, b = self.req("POST", "/api/v1/rules", {
                "name": "CRM", "on": ["ticket.created"], "actions": [{"type": "webhook", "url": hook.url}]})
            self.assertEqual(st, 201, b)
            rule = b["rule"]
            st, _, first = inbound(self.d, {"external_id": "wh-1", "from": {"id": "wh-cust-1"}, "text": "Вопрос"})
            self.assertEqual(st, 200, first)
            hook.wait_requests(1)
            d = wait_for(lambda: (lambda x: x if x and x[0]["attempts"] == 1 else None)(self.deliveries()),
                         msg="the first attempt recorded")[0]
            self.assertEqual((d["status"], d["url"], d["rule_id"], d["ticket_number"]),
                             ("pending", hook.url, rule["id"], first["ticket_number"]))
            self.assertIn("503", d["last_error"])
            self.assertIsNotNone(d["next_at"])
            self.assertTrue(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d["created_at"]), d)
            got = hook.wait_requests(2)
            self.assertTrue(all(r["sig_ok"] for r in got), got)
            d = wait_for(lambda: (lambda x: x if x and x[0]["status"] == "sent" else None)(self.deliveries()),
                         msg="delivered on the retry")[0]
            self.assertEqual((d["attempts"], d["last_error"], d["next_at"]), (2, None, None))

            st, _, second = inbound(self.d, {"external_id": "wh-2", "from": {"id": "wh-cust-2"}, "text": "Ещё"})
            self.assertEqual(st, 200, second)
            d = wait_for(lambda: (lambda x: x if len(x) == 2 and x[0]["status"] == "failed" else None)(
                self.deliveries()), msg="refused for good")[0]
            self.assertEqual((d["ticket_number"], d["attempts"]), (second["ticket_number"], 1))
            self.assertIn("404", d["last_error"])
            # Newest first; filtered by status; limited.
            self.assertEqual([x["ticket_number"] for x in self.deliveries()],
                             [second["ticket_number"], first["ticket_number"]])
            self.assertEqual([x["status"] for x in self.deliveries("?status=sent")], ["sent"])
            self.assertEqual(len(self.deliveries("?limit=1")), 1)
            self.assertEqual(self.deliveries("?status=pending"), [])
            st, _, _ = self.req("DELETE", f"/api/v1/rules/{rule['id']}")
            self.assertEqual(st, 200)

    def test_3_rotating_the_secret_signs_from_then_on(self):
        old = self.d.cli("config", "webhook-secret", check=True).stdout.strip()
        st, _, b = self.req("POST", "/api/v1/webhooks/secret")
        self.assertEqual(st, 200, b)
        new = b["secret"]
        self.assertTrue(re.fullmatch(r"[0-9a-f]{64}", new), new)
        self.assertNotEqual(new, old)
        self.assertEqual(self.req("GET", "/api/v1/webhooks/secret")[2], {"secret": new})
        self.assertEqual(self.d.cli("config", "webhook-secret", check=True).stdout.strip(), new)
        with CallbackServer(secret=new) as hook:
            st, _, b = self.req("POST", "/api/v1/rules", {
                "name": "CRM 2", "on": ["ticket.created"], "actions": [{"type": "webhook", "url": hook.url}]})
            self.assertEqual(st, 201, b)
            st, _, r = inbound(self.d, {"external_id": "wh-3", "from": {"id": "wh-cust-3"}, "text": "Тест"})
            self.assertEqual(st, 200, r)
            got = hook.wait_requests(1)
            self.assertTrue(got[0]["sig_ok"], got[0]["headers"])
            self.assertEqual(json.loads(got[0]["body"])["ticket"]["number"], r["ticket_number"])
        # Recorded in the event log (who did it), without the secret; never logged.
        db = sqlite3.connect(f"file:{self.d.data_dir}/switchboard.db?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT actor_kind, actor_id, data FROM event WHERE type = 'webhook.secret_rotated'").fetchall()
        finally:
            db.close()
        admin_id = [a["id"] for a in self.req("GET", "/api/v1/agents")[2]["agents"] if a["email"] == DEMO_ADMIN[0]][0]
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0][:2], ("agent", admin_id))
        self.assertNotIn(new, rows[0][2])
        self.assertNotIn(new, self.d.log())


if __name__ == "__main__":
    unittest.main()
