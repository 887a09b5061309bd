"""Web chat: config, sessions, visitor WebSocket, acks and idempotent client
ids, agent replies delivered to the visitor, history, SSE fallback, assets."""
import http.client
import json
import time
import unittest
import urllib.parse

from sbtest import (DEMO_ANNA, Daemon, WebSocket, WSHandshakeError, chat_session, chat_ws, event_pred,
                    wait_for)

CHANNEL = 2  # the demo web chat channel


class SSE:
    """Reads /chat/events with http.client, line by line."""

    def __init__(self, d, token, channel=CHANNEL, timeout=10):
        self.conn = http.client.HTTPConnection(d.host, d.port, timeout=timeout)
        self.conn.request("GET", f"/chat/events?channel={channel}&token={urllib.parse.quote(token)}",
                          headers={"Accept": "text/event-stream"})
        self.resp = self.conn.getresponse()
        self.backlog = []

    def next_data(self, timeout=10):
        """The next `data: {...}` event as JSON."""
        if self.backlog:
            return self.backlog.pop(0)
        return self._read_data(timeout)

    def _read_data(self, timeout):
        self.conn.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.resp.readline()
            if not line:
                raise AssertionError("event stream ended")
            line = line.decode("utf-8").rstrip("\r\n")
            if line.startswith("data:"):
                return json.loads(line[5:].strip())
        raise TimeoutError("no SSE event")

    def until(self, pred, timeout=10):
        for i, m in enumerate(self.backlog):
            if pred(m):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_data(max(0.05, deadline - time.monotonic()))
            if pred(m):
                return m
            self.backlog.append(m)

    def close(self):
        self.conn.close()


def is_type(t, **kw):
    def pred(m):
        if m.get("type") != t:
            return False
        return all(m.get(k) == v for k, v in kw.items())
    return pred


class WebChatTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.d.__enter__()
        cls.anna = cls.d.token(DEMO_ANNA[0])

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def get_ticket(self, number):
        st, h, b = self.d.req("GET", f"/api/v1/tickets/{number}", token=self.anna)
        self.assertEqual(st, 200, b)
        return b

    def test_config(self):
        st, h, b = self.d.req("GET", f"/chat/config?channel={CHANNEL}")
        self.assertEqual(st, 200, b)
        self.assertEqual(b["channel_id"], CHANNEL)
        self.assertIn("name", b)
        self.assertFalse(b["prechat"])
        self.assertIn("ru", b["greeting"])
        self.assertEqual(h.get("Access-Control-Allow-Origin"), "*")
        st, h, b = self.d.req("GET", "/chat/config?channel=1")  # an API channel, not a chat
        self.assertEqual(st, 404, b)
        st, h, b = self.d.req("GET", "/chat/config")
        self.assertEqual(st, 422, b)
        st, h, b = self.d.req("GET", "/chat/config?channel=abc")
        self.assertEqual(st, 422, b)
        st, h, b = self.d.req("OPTIONS", "/chat/session")
        self.assertEqual(st, 204)
        self.assertIn("POST", h.get("Access-Control-Allow-Methods", ""))

    def test_session_validation(self):
        st, h, b = self.d.req("POST", "/chat/session", {})
        self.assertEqual(st, 422, b)
        self.assertIn("channel_id", b["error"]["message"])
        st, h, b = self.d.req("POST", "/chat/session", {"channel_id": 1})
        self.assertEqual(st, 404, b)
        st, h, b = self.d.req("POST", "/chat/session", {"channel_id": CHANNEL, "evil": "x"})
        self.assertEqual(st, 422, b)
        self.assertEqual(b["error"]["code"], "unknown_field")
        st, h, b = self.d.req("POST", "/chat/session", {"channel_id": CHANNEL, "email": "nope"})
        self.assertEqual(st, 422, b)
        self.assertIn("email", b["error"]["message"])
        # A forged token is not an error: the visitor just gets a new identity.
        s = chat_session(self.d, token="v1." + "a" * 32 + "." + "b" * 32)
        self.assertNotEqual(s["visitor_id"], "a" * 32)

    def test_ws_requires_valid_token(self):
        with self.assertRaises(WSHandshakeError) as cm:
            WebSocket.connect(self.d, f"/chat/ws?channel={CHANNEL}&token=v1.bad")
        self.assertEqual(cm.exception.status, 401)
        s = chat_session(self.d)
        with self.assertRaises(WSHandshakeError) as cm:
            WebSocket.connect(self.d, f"/chat/ws?token={urllib.parse.quote(s['token'])}")
        self.assertEqual(cm.exception.status, 422)
        # A live connection opens only for an existing web chat channel (1 is the API channel).
        for channel in (1, 999):
            with self.assertRaises(WSHandshakeError) as cm:
                WebSocket.connect(self.d, f"/chat/ws?channel={channel}&token={urllib.parse.quote(s['token'])}")
            self.assertEqual(cm.exception.status, 404)
            st, _, body = self.d.req("GET", f"/chat/events?channel={channel}&token={urllib.parse.quote(s['token'])}")
            self.assertEqual(st, 404)
            self.assertEqual(body["error"]["code"], "not_found")
        # Unknown fields are refused on the POST fallback like everywhere else.
        st, _, body = self.d.req("POST", f"/chat/messages?channel={CHANNEL}&token={urllib.parse.quote(s['token'])}",
                                 body={"client_id": "x1", "text": "hi", "colour": "red"})
        self.assertEqual(st, 422)
        self.assertEqual(body["error"]["code"], "unknown_field")

    def test_round_trip(self):
        s = chat_session(self.d)
        self.assertTrue(s["token"].startswith("v1."))
        self.assertEqual(s["messages"], [])
        agent = self.d.stream(self.anna)
        visitor = chat_ws(self.d, s["token"])
        try:
            visitor.send_json({"type": "ping"})
            visitor.recv_until(is_type("pong"))
            visitor.send_json({"type": "message", "client_id": "c1", "text": "Привет"})
            ack = visitor.recv_until(is_type("ack", client_id="c1"))
            number = ack["ticket_number"]
            mid = ack["message_id"]
            self.assertIsInstance(number, int)

            tc = agent.recv_until(event_pred("ticket.created", number=number))
            self.assertEqual(tc["data"]["channel_id"], CHANNEL)
            self.assertEqual(tc["data"]["channel_kind"], "webchat")
            mc = agent.recv_until(event_pred("message.created", id=mid))
            self.assertEqual(mc["data"]["text"], "Привет")
            self.assertEqual(mc["data"]["client_id"], "c1")

            # The visitor is typing: agents see it on the ticket.
            visitor.send_json({"type": "typing"})
            ty = agent.recv_until(event_pred("contact.typing", ticket_number=number))
            self.assertEqual(ty["data"]["contact_id"], tc["data"]["contact_id"])

            # The agent is typing: the visitor sees the agent's name.
            agent.send_json({"type": "typing", "ticket_number": number})
            at = visitor.recv_until(is_type("typing"))
            self.assertIn("Anna", at["name"])

            st, h, b = self.d.req("POST", f"/api/v1/tickets/{number}/messages", {"text": "Здравствуйте! Чем помочь?"},
                                  token=self.anna)
            self.assertEqual(st, 201, b)
            reply_id = b["message"]["id"]
            got = visitor.recv_until(is_type("message"))
            self.assertEqual(got["message"]["direction"], "out")
            self.assertEqual(got["message"]["text"], "Здравствуйте! Чем помочь?")
            self.assertEqual(got["message"]["id"], reply_id)
            self.assertIsNotNone(got["message"]["author"])
            self.assertNotIn("email", json.dumps(got["message"]["author"]))  # visitors see a name only
            agent.recv_until(event_pred("message.updated", id=reply_id, delivery_status="delivered"))
            wait_for(lambda: [m for m in self.get_ticket(number)["messages"]
                              if m["id"] == reply_id and m["delivery_status"] == "delivered"],
                     msg="the reply to be marked delivered")

            # Resending the same client id: same message, no duplicate.
            visitor.send_json({"type": "message", "client_id": "c1", "text": "Привет"})
            again = visitor.recv_until(is_type("ack", client_id="c1"))
            self.assertEqual(again["message_id"], mid)
            self.assertEqual(again["ticket_number"], number)
            msgs = self.get_ticket(number)["messages"]
            self.assertEqual([(m["direction"], m["text"]) for m in msgs],
                             [("in", "Привет"), ("out", "Здравствуйте! Чем помочь?")])

            # Validation errors come back on the socket, tagged with the client id.
            visitor.send_json({"type": "message", "client_id": "c2", "text": "   "})
            err = visitor.recv_until(is_type("error", client_id="c2"))
            self.assertEqual(err["code"], "validation_failed")
            visitor.send_text("not json")
            err = visitor.recv_until(is_type("error", code="malformed_json"))
            visitor.send_json({"type": "teleport"})
            visitor.recv_until(is_type("error", code="unknown_type"))
        finally:
            visitor.close()
            agent.close()

        # A new session with the same token: same visitor, with history.
        s2 = chat_session(self.d, token=s["token"])
        self.assertEqual(s2["visitor_id"], s["visitor_id"])
        self.assertEqual(s2["token"], s["token"])
        hist = [(m["direction"], m["text"]) for m in s2["messages"]]
        self.assertEqual(hist, [("in", "Привет"), ("out", "Здравствуйте! Чем помочь?")])
        self.assertEqual(s2["messages"][0]["client_id"], "c1")

    def test_reply_waits_for_offline_visitor(self):
        s = chat_session(self.d)
        visitor = chat_ws(self.d, s["token"])
        try:
            visitor.send_json({"type": "message", "client_id": "q1", "text": "are you there?"})
            ack = visitor.recv_until(is_type("ack"))
        finally:
            visitor.close()
        wait_for(lambda: self.d.metrics()["switchboard_webchat_connections"] == 0,
                 msg="the visitor connection to be gone")
        st, h, b = self.d.req("POST", f"/api/v1/tickets/{ack['ticket_number']}/messages", {"text": "yes, here"},
                              token=self.anna)
        self.assertEqual(st, 201, b)
        rid = b["message"]["id"]
        m = [x for x in self.get_ticket(ack["ticket_number"])["messages"] if x["id"] == rid][0]
        self.assertEqual(m["delivery_status"], "queued")
        # Coming back: the history has the reply, which now counts as delivered.
        s2 = chat_session(self.d, token=s["token"])
        self.assertIn("yes, here", [x["text"] for x in s2["messages"]])
        m = [x for x in self.get_ticket(ack["ticket_number"])["messages"] if x["id"] == rid][0]
        self.assertEqual(m["delivery_status"], "delivered")

    def test_two_tabs_see_each_others_messages(self):
        s = chat_session(self.d)
        tab1 = chat_ws(self.d, s["token"])
        tab2 = chat_ws(self.d, s["token"])
        try:
            tab1.send_json({"type": "message", "client_id": "t1", "text": "from tab one"})
            tab1.recv_until(is_type("ack", client_id="t1"))
            echo = tab2.recv_until(is_type("message"))
            self.assertEqual(echo["message"]["text"], "from tab one")
            self.assertEqual(echo["message"]["direction"], "in")
        finally:
            tab1.close()
            tab2.close()

    def test_sse_fallback_and_post_messages(self):
        s = chat_session(self.d)
        sse = SSE(self.d, s["token"])
        try:
            self.assertEqual(sse.resp.status, 200)
            self.assertTrue(sse.resp.getheader("Content-Type", "").startswith("text/event-stream"))
            q = urllib.parse.quote(s["token"])
            st, h, b = self.d.req("POST", f"/chat/messages?channel={CHANNEL}&token={q}",
                                  {"client_id": "s1", "text": "через SSE"})
            self.assertEqual(st, 200, b)
            number, mid = b["ticket_number"], b["message_id"]
            st, h, b2 = self.d.req("POST", f"/chat/messages?channel={CHANNEL}&token={q}",
                                   {"client_id": "s1", "text": "через SSE"})
            self.assertEqual((st, b2["message_id"]), (200, mid))
            st, h, b3 = self.d.req("POST", f"/chat/messages?channel={CHANNEL}&token={q}",
                                   {"client_id": "s2", "text": ""})
            self.assertEqual(st, 422, b3)
            st, h, b4 = self.d.req("POST", f"/chat/messages?channel={CHANNEL}&token=v1.nope",
                                   {"client_id": "s3", "text": "x"})
            self.assertEqual(st, 401, b4)

            st, h, r = self.d.req("POST", f"/api/v1/tickets/{number}/messages", {"text": "ответ агента"},
                                  token=self.anna)
            self.assertEqual(st, 201, r)
            ev = sse.until(lambda m: m.get("type") == "message" and m["message"]["direction"] == "out")
            self.assertEqual(ev["message"]["text"], "ответ агента")
            self.assertEqual(ev["message"]["id"], r["message"]["id"])
            wait_for(lambda: [m for m in self.get_ticket(number)["messages"]
                              if m["id"] == r["message"]["id"] and m["delivery_status"] == "delivered"],
                     msg="the SSE-delivered reply to be marked delivered")
            msgs = self.get_ticket(number)["messages"]
            self.assertEqual([m["text"] for m in msgs], ["через SSE", "ответ агента"])
        finally:
            sse.close()

    def test_prechat_email_does_not_link_to_existing_contact(self):
        from sbtest import inbound
        st, h, api = inbound(self.d, {"external_id": "prechat-1", "from": {"id": "pc", "email": "known@example.com"},
                                      "text": "api message"})
        self.assertEqual(st, 200, api)
        s = chat_session(self.d, name="Someone", email="known@example.com")
        # The history of the known customer must not leak into a session
        # that merely typed their email.
        self.assertEqual(s["messages"], [])
        visitor = chat_ws(self.d, s["token"])
        try:
            visitor.send_json({"type": "message", "client_id": "p1", "text": "hi from chat"})
            ack = visitor.recv_until(is_type("ack"))
        finally:
            visitor.close()
        self.assertNotEqual(ack["ticket_number"], api["ticket_number"])
        t = self.get_ticket(ack["ticket_number"])
        self.assertNotEqual(t["ticket"]["contact_id"], api["contact_id"])

    def test_assets(self):
        st, h, body = self.d.req("GET", "/widget.js")
        self.assertEqual(st, 200)
        self.assertIn("javascript", h.get("Content-Type", ""))
        self.assertEqual(h.get("X-Content-Type-Options"), "nosniff")
        self.assertGreater(len(body), 100)
        st, h, body = self.d.req("GET", "/chat/demo")
        self.assertEqual(st, 200)
        self.assertTrue(h.get("Content-Type", "").startswith("text/html"))
        self.assertIn("Content-Security-Policy", h)
        self.assertIn("frame-ancestors 'none'", h["Content-Security-Policy"])
        self.assertNotIn("__CHANNEL_ID__", body)
        self.assertRegex(body, r"\b%d\b" % CHANNEL)
        st, h, body = self.d.req("GET", "/chat/demo?channel=7")
        self.assertEqual(st, 200)
        self.assertRegex(body, r"\b7\b")
        st, h, body = self.d.req("POST", "/widget.js")
        self.assertEqual(st, 405)
        self.assertEqual(h.get("Allow"), "GET")
        st, h, body = self.d.req("GET", "/")
        self.assertEqual(st, 200)
        self.assertIn("Content-Security-Policy", h)


if __name__ == "__main__":
    unittest.main()
