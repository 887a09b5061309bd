"""Contacts across channels: phone normalisation links two API channels,
timeline, merge with a web chat visitor, search, create/patch conflicts."""
import unittest

from sbtest import DEMO_ANNA, Daemon, chat_session, chat_ws, inbound


def is_ack(m):
    return m.get("type") == "ack"


class ContactsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.d.__enter__()
        cls.anna = cls.d.token(DEMO_ANNA[0])

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def api(self, method, path, body=None):
        return self.d.req(method, path, body, token=self.anna)

    def timeline(self, cid):
        st, h, b = self.api("GET", f"/api/v1/contacts/{cid}/timeline")
        self.assertEqual(st, 200, b)
        return b

    def visitor_message(self, text, client_id="w1"):
        s = chat_session(self.d)
        ws = chat_ws(self.d, s["token"])
        try:
            ws.send_json({"type": "message", "client_id": client_id, "text": text})
            ack = ws.recv_until(is_ack)
        finally:
            ws.close()
        st, h, t = self.api("GET", f"/api/v1/tickets/{ack['ticket_number']}")
        self.assertEqual(st, 200, t)
        return s, ack, t["ticket"]["contact_id"]

    def test_cross_channel_timeline_and_merge(self):
        st, h, a = inbound(self.d, {"external_id": "tl-1", "from": {"id": "u1", "phone": "+79990001122"},
                                    "text": "API one: первое сообщение"})
        self.assertEqual(st, 200, a)
        other = self.d.add_api_channel(name="Second shop")
        self.assertNotEqual(other["id"], 1)
        st, h, b = inbound(self.d, {"external_id": "tl-2", "from": {"phone": "8 999 000-11-22"},
                                    "text": "API two: второе сообщение"}, channel=other["id"], secret=other["secret"])
        self.assertEqual(st, 200, b)
        self.assertEqual(b["contact_id"], a["contact_id"], "the phone must be normalised to E.164")
        cid = a["contact_id"]

        st, h, c = self.api("GET", f"/api/v1/contacts/{cid}")
        self.assertEqual(st, 200, c)
        idents = {(i["kind"], i["address"]) for i in c["contact"]["identities"]}
        self.assertIn(("phone", "+79990001122"), idents)
        self.assertIn(("external", "u1"), idents)

        tl = self.timeline(cid)
        self.assertEqual(tl["contact"]["id"], cid)
        texts = [m["text"] for m in tl["messages"]]
        self.assertEqual(texts, ["API one: первое сообщение", "API two: второе сообщение"])
        self.assertEqual({m["channel_id"] for m in tl["messages"]}, {1, other["id"]})
        times = [m["created_at"] for m in tl["messages"]]
        self.assertEqual(times, sorted(times))
        self.assertIn(a["ticket_number"], [t["number"] for t in tl["tickets"]])

        # Search finds the contact by a differently written phone number.
        st, h, found = self.api("GET", "/api/v1/contacts?q=%2B7%20(999)%20000-11-22")
        self.assertEqual(st, 200, found)
        self.assertIn(cid, [x["id"] for x in found["contacts"]])

        # A web chat visitor is a contact of its own ...
        session, ack, visitor_cid = self.visitor_message("Привет из чата")
        self.assertNotEqual(visitor_cid, cid)
        # ... until an agent merges them.
        st, h, m = self.api("POST", f"/api/v1/contacts/{cid}/merge", {"other_id": visitor_cid})
        self.assertEqual(st, 200, m)
        self.assertEqual(m["contact"]["id"], cid)
        tl = self.timeline(cid)
        texts = [x["text"] for x in tl["messages"]]
        self.assertEqual(texts, ["API one: первое сообщение", "API two: второе сообщение", "Привет из чата"])
        self.assertIn(ack["ticket_number"], [t["number"] for t in tl["tickets"]])
        kinds = {i["kind"] for i in m["contact"]["identities"]}
        self.assertIn("webchat", kinds)
        st, h, gone = self.api("GET", f"/api/v1/contacts/{visitor_cid}")
        self.assertEqual(st, 200, gone)
        self.assertEqual(gone["contact"]["merged_into"], cid)
        st, h, lst = self.api("GET", "/api/v1/contacts?limit=200")
        self.assertNotIn(visitor_cid, [x["id"] for x in lst["contacts"]])
        st, h, t = self.api("GET", f"/api/v1/tickets/{ack['ticket_number']}")
        self.assertEqual(t["ticket"]["contact_id"], cid)

        # The visitor keeps chatting; the message lands on the survivor.
        ws = chat_ws(self.d, session["token"])
        try:
            ws.send_json({"type": "message", "client_id": "w2", "text": "ещё вопрос"})
            ack2 = ws.recv_until(is_ack)
        finally:
            ws.close()
        st, h, t2 = self.api("GET", f"/api/v1/tickets/{ack2['ticket_number']}")
        self.assertEqual(t2["ticket"]["contact_id"], cid)
        self.assertEqual(self.timeline(cid)["messages"][-1]["text"], "ещё вопрос")

        # Merging again, with itself, with nobody.
        st, h, e = self.api("POST", f"/api/v1/contacts/{cid}/merge", {"other_id": visitor_cid})
        self.assertEqual(st, 409, e)
        self.assertEqual(e["error"]["code"], "conflict")
        st, h, e = self.api("POST", f"/api/v1/contacts/{visitor_cid}/merge", {"other_id": cid})
        self.assertEqual(st, 409, e)
        st, h, e = self.api("POST", f"/api/v1/contacts/{cid}/merge", {"other_id": cid})
        self.assertEqual(st, 422, e)
        self.assertIn("other_id", e["error"]["message"])
        st, h, e = self.api("POST", f"/api/v1/contacts/{cid}/merge", {"other_id": 987654})
        self.assertEqual(st, 404, e)
        st, h, e = self.api("POST", "/api/v1/contacts/987654/merge", {"other_id": cid})
        self.assertEqual(st, 404, e)
        st, h, e = self.api("POST", f"/api/v1/contacts/{cid}/merge", {})
        self.assertEqual(st, 422, e)
        st, h, e = self.api("POST", f"/api/v1/contacts/{cid}/merge", {"other_id": "2"})
        self.assertEqual(st, 422, e)
        st, h, e = self.api("GET", f"/api/v1/contacts/{cid}/merge")
        self.assertEqual(st, 405, e)
        self.assertEqual(h.get("Allow"), "POST")

    def test_merge_keeps_survivor_values_and_unions_tags(self):
        st, h, a = self.api("POST", "/api/v1/contacts", {"name": "Survivor", "tags": ["vip", "a"],
                                                         "attributes": {"k1": "A"}})
        self.assertEqual(st, 201, a)
        st, h, b = self.api("POST", "/api/v1/contacts", {"name": "Duplicate", "language": "en", "vip": True,
                                                         "tags": ["a", "b"], "attributes": {"k1": "B", "k2": 2},
                                                         "email": "dup@example.com"})
        self.assertEqual(st, 201, b)
        aid, bid = a["contact"]["id"], b["contact"]["id"]
        st, h, m = self.api("POST", f"/api/v1/contacts/{aid}/merge", {"other_id": bid})
        self.assertEqual(st, 200, m)
        c = m["contact"]
        self.assertEqual(c["name"], "Survivor")
        self.assertEqual(c["language"], "en")
        self.assertTrue(c["vip"])
        self.assertEqual(c["tags"], ["vip", "a", "b"])
        self.assertEqual(c["attributes"], {"k1": "A", "k2": 2})
        self.assertIn(("email", "dup@example.com"), {(i["kind"], i["address"]) for i in c["identities"]})

    def test_create_patch_and_conflicts(self):
        st, h, a = self.api("POST", "/api/v1/contacts", {"name": "Мария", "phone": "+7 912 345-67-89"})
        self.assertEqual(st, 201, a)
        self.assertIn(("phone", "+79123456789"), {(i["kind"], i["address"]) for i in a["contact"]["identities"]})
        st, h, b = self.api("POST", "/api/v1/contacts", {"name": "Other", "phone": "89123456789"})
        self.assertEqual(st, 409, b)
        self.assertIn("phone", b["error"]["message"])
        st, h, c = self.api("POST", "/api/v1/contacts", {"name": "Other"})
        self.assertEqual(st, 201, c)
        cid = c["contact"]["id"]
        st, h, e = self.api("PATCH", f"/api/v1/contacts/{cid}", {"phone": "8 (912) 345 67 89"})
        self.assertEqual(st, 409, e)
        st, h, e = self.api("PATCH", f"/api/v1/contacts/{cid}", {"language": "ru; DROP"})
        self.assertEqual(st, 422, e)
        self.assertIn("language", e["error"]["message"])
        st, h, e = self.api("PATCH", f"/api/v1/contacts/{cid}", {"nickname": "x"})
        self.assertEqual(st, 422, e)
        self.assertEqual(e["error"]["code"], "unknown_field")
        st, h, p = self.api("PATCH", f"/api/v1/contacts/{cid}", {"email": "Other@Example.com", "vip": True})
        self.assertEqual(st, 200, p)
        self.assertTrue(p["contact"]["vip"])
        self.assertIn(("email", "other@example.com"), {(i["kind"], i["address"]) for i in p["contact"]["identities"]})
        st, h, e = self.api("GET", "/api/v1/contacts/999999")
        self.assertEqual(st, 404, e)
        st, h, e = self.api("GET", "/api/v1/contacts/999999/timeline")
        self.assertEqual(st, 404, e)
        st, h, e = self.api("GET", "/api/v1/contacts/abc")
        self.assertEqual(st, 404, e)

    def test_search_and_pagination(self):
        ids = []
        for i in range(5):
            st, h, c = self.api("POST", "/api/v1/contacts", {"name": f"Pager Person {i}"})
            self.assertEqual(st, 201, c)
            ids.append(c["contact"]["id"])
        seen, cursor = [], None
        for _ in range(10):
            path = "/api/v1/contacts?q=Pager&limit=2" + (f"&cursor={cursor}" if cursor else "")
            st, h, page = self.api("GET", path)
            self.assertEqual(st, 200, page)
            self.assertLessEqual(len(page["contacts"]), 2)
            seen += [x["id"] for x in page["contacts"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(sorted(seen), sorted(ids))
        self.assertEqual(len(seen), len(set(seen)))
        st, h, e = self.api("GET", "/api/v1/contacts?limit=0")
        self.assertEqual(st, 422, e)
        # LIKE wildcards in q are literal.
        st, h, r = self.api("GET", "/api/v1/contacts?q=%25")
        self.assertEqual(st, 200, r)
        self.assertEqual(r["contacts"], [])


if __name__ == "__main__":
    unittest.main()
