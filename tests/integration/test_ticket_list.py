"""GET /api/v1/tickets: status, priority, assignee (me/none/id), team,
channel, contact, full-text q (Russian), cursor pagination; PATCH events."""
import unittest
import urllib.parse

from sbtest import DEMO_ANNA, DEMO_BORIS, Daemon, chat_session, chat_ws, event_pred, inbound


class TicketListTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = Daemon()
        d.__enter__()
        try:
            cls.anna = d.token(DEMO_ANNA[0])
            cls.boris = d.token(DEMO_BORIS[0])
            cls.anna_id = d.req("GET", "/api/v1/auth/me", token=cls.anna)[2]["agent"]["id"]
            cls.boris_id = d.req("GET", "/api/v1/auth/me", token=cls.boris)[2]["agent"]["id"]
            st, h, teams = d.req("GET", "/api/v1/teams", token=cls.anna)
            assert st == 200, teams
            cls.teams = {t["name"]: t["id"] for t in teams["teams"]}
            cls.other = d.add_api_channel(name="Second")
            T = cls.T = {}

            def api(key, text, channel=1, secret=None, **patch):
                st, h, b = inbound(d, {"external_id": key, "from": {"id": key}, "text": text}, channel=channel,
                                   secret=secret)
                assert st == 200, b
                T[key] = b["ticket_number"]
                if patch:
                    st, h, p = d.req("PATCH", f"/api/v1/tickets/{b['ticket_number']}", patch, token=cls.anna)
                    assert st == 200, p

            api("order", "Где мой заказ?", priority="high", assignee_id=cls.anna_id, team_id=cls.teams["Sales"])
            api("hello", "Hello there, general question", status="pending", priority="low")
            api("late", "Заказ не пришёл вовремя", channel=cls.other["id"], secret=cls.other["secret"],
                priority="urgent", assignee_id=cls.boris_id, team_id=cls.teams["Support"])
            api("done", "Всё решено, спасибо", status="resolved")
            api("plain", "Просто вопрос")
            s = chat_session(d)
            ws = chat_ws(d, s["token"])
            try:
                ws.send_json({"type": "message", "client_id": "c", "text": "Вопрос про доставку"})
                T["chat"] = ws.recv_until(lambda m: m.get("type") == "ack")["ticket_number"]
            finally:
                ws.close()
        except BaseException:
            d.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def numbers(self, query, token=None):
        st, h, b = self.d.req("GET", "/api/v1/tickets" + query, token=token or self.anna)
        self.assertEqual(st, 200, b)
        nums = [t["number"] for t in b["tickets"]]
        self.assertEqual(nums, sorted(nums, reverse=True), "newest first")
        return set(nums)

    def test_all(self):
        self.assertEqual(self.numbers(""), set(self.T.values()))

    def test_status(self):
        T = self.T
        self.assertEqual(self.numbers("?status=pending"), {T["hello"]})
        self.assertEqual(self.numbers("?status=resolved"), {T["done"]})
        self.assertEqual(self.numbers("?status=new"), {T["order"], T["late"], T["plain"], T["chat"]})
        self.assertEqual(self.numbers("?status=pending,resolved"), {T["hello"], T["done"]})
        self.assertEqual(self.numbers("?status=closed"), set())

    def test_priority(self):
        T = self.T
        self.assertEqual(self.numbers("?priority=high"), {T["order"]})
        self.assertEqual(self.numbers("?priority=low,urgent"), {T["hello"], T["late"]})
        self.assertEqual(self.numbers("?priority=normal"), {T["done"], T["plain"], T["chat"]})

    def test_assignee(self):
        T = self.T
        self.assertEqual(self.numbers("?assignee=me"), {T["order"]})
        self.assertEqual(self.numbers("?assignee=me", token=self.boris), {T["late"]})
        self.assertEqual(self.numbers(f"?assignee={self.boris_id}"), {T["late"]})
        self.assertEqual(self.numbers("?assignee=none"), {T["hello"], T["done"], T["plain"], T["chat"]})
        st, h, b = self.d.req("GET", "/api/v1/tickets?assignee=someone", token=self.anna)
        self.assertEqual(st, 422, b)
        self.assertIn("assignee", b["error"]["message"])

    def test_team(self):
        T = self.T
        self.assertEqual(self.numbers(f"?team={self.teams['Sales']}"), {T["order"]})
        self.assertEqual(self.numbers(f"?team={self.teams['Support']}"), {T["late"]})
        self.assertEqual(self.numbers("?team=none"), {T["hello"], T["done"], T["plain"], T["chat"]})

    def test_channel_and_contact(self):
        T = self.T
        self.assertEqual(self.numbers(f"?channel={self.other['id']}"), {T["late"]})
        self.assertEqual(self.numbers("?channel=2"), {T["chat"]})
        self.assertEqual(self.numbers("?channel=1"), {T["order"], T["hello"], T["done"], T["plain"]})
        st, h, t = self.d.req("GET", f"/api/v1/tickets/{T['plain']}", token=self.anna)
        self.assertEqual(self.numbers(f"?contact={t['ticket']['contact_id']}"), {T["plain"]})

    def test_combined(self):
        T = self.T
        self.assertEqual(self.numbers("?status=new&priority=high,urgent"), {T["order"], T["late"]})
        self.assertEqual(self.numbers(f"?status=new&channel={self.other['id']}&assignee=none"), set())

    def test_full_text(self):
        T = self.T
        self.assertEqual(self.numbers("?q=%D0%B7%D0%B0%D0%BA%D0%B0%D0%B7"), {T["order"], T["late"]})  # заказ
        self.assertEqual(self.numbers("?q=заказ"), {T["order"], T["late"]})
        self.assertEqual(self.numbers("?q=мой+заказ"), {T["order"]})
        self.assertEqual(self.numbers("?q=ЗАКАЗ"), {T["order"], T["late"]})  # case-insensitive Cyrillic
        self.assertEqual(self.numbers("?q=доставк"), {T["chat"]})  # prefix
        self.assertEqual(self.numbers("?q=hello"), {T["hello"]})
        self.assertEqual(self.numbers("?q=nothingmatches"), set())
        self.assertEqual(self.numbers("?q=заказ&priority=urgent"), {T["late"]})
        # FTS syntax in q is data, not a query language.
        for q in ('"', "NEAR(a b)", "*", "a OR", "-x", "(", "заказ\"*"):
            with self.subTest(q=q):
                st, h, b = self.d.req("GET", "/api/v1/tickets?q=" + urllib.parse.quote(q),
                                      token=self.anna)
                self.assertEqual(st, 200, b)

    def test_cursor_pagination(self):
        all_nums = sorted(self.T.values(), reverse=True)
        seen, cursor, pages = [], None, 0
        while True:
            path = "/api/v1/tickets?limit=2" + (f"&cursor={cursor}" if cursor else "")
            st, h, b = self.d.req("GET", path, token=self.anna)
            self.assertEqual(st, 200, b)
            self.assertLessEqual(len(b["tickets"]), 2)
            seen += [t["number"] for t in b["tickets"]]
            pages += 1
            cursor = b["next_cursor"]
            if cursor is None:
                break
            self.assertIsInstance(cursor, str)
            self.assertLess(pages, 20)
        self.assertEqual(seen, all_nums)
        self.assertEqual(pages, (len(all_nums) + 1) // 2)
        # Filters and cursors combine.
        st, h, b = self.d.req("GET", "/api/v1/tickets?limit=1&status=new", token=self.anna)
        first = b["tickets"][0]["number"]
        st, h, b2 = self.d.req("GET", f"/api/v1/tickets?limit=10&status=new&cursor={b['next_cursor']}",
                               token=self.anna)
        self.assertNotIn(first, [t["number"] for t in b2["tickets"]])
        self.assertEqual(len(b2["tickets"]) + 1, len(self.numbers("?status=new")))
        st, h, e = self.d.req("GET", "/api/v1/tickets?cursor=abc", token=self.anna)
        self.assertEqual(st, 422, e)

    def test_patch_publishes_ticket_updated(self):
        ws = self.d.stream(self.anna)
        try:
            n = self.T["plain"]
            st, h, b = self.d.req("PATCH", f"/api/v1/tickets/{n}", {"tags": ["vip"]}, token=self.boris)
            self.assertEqual(st, 200, b)
            ev = ws.recv_until(event_pred("ticket.updated", ticket__number=n))
            self.assertEqual(ev["data"]["changes"]["tags"], [[], ["vip"]])
            # A no-op PATCH publishes nothing and changes nothing.
            st, h, b2 = self.d.req("PATCH", f"/api/v1/tickets/{n}", {"tags": ["vip"]}, token=self.boris)
            self.assertEqual(st, 200, b2)
            self.assertEqual(b2["ticket"]["tags"], ["vip"])
            # Custom attributes: stored, published, validated naming the field.
            attrs = {"order": "A-1001", "amount": 1290, "gift": True}
            st, h, b3 = self.d.req("PATCH", f"/api/v1/tickets/{n}", {"attributes": attrs}, token=self.boris)
            self.assertEqual(st, 200, b3)
            self.assertEqual(b3["ticket"]["attributes"], attrs)
            ev = ws.recv_until(event_pred("ticket.updated", ticket__number=n))
            self.assertEqual(ev["data"]["changes"]["attributes"], [{}, attrs])
            st, h, b4 = self.d.req("PATCH", f"/api/v1/tickets/{n}", {"attributes": {"x": [1]}}, token=self.boris)
            self.assertEqual(st, 422)
            self.assertIn("attributes", b4["error"]["message"])
            self.assertEqual(self.d.req("GET", f"/api/v1/tickets/{n}", token=self.anna)[2]["ticket"]["attributes"],
                             attrs)
        finally:
            ws.close()


if __name__ == "__main__":
    unittest.main()
