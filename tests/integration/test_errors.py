"""Every error status with its JSON body, and abuse: huge/invalid bodies,
deep nesting, header floods, slowloris, rate limits, connection limits."""
import json
import socket
import time
import unittest

from sbtest import (DEMO_ADMIN, DEMO_ANNA, Client, Daemon, inbound, raw_request, read_response, wait_closed,
                    wait_for)


class ErrorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon("[http]\nmax_body = 200000\nheader_timeout_ms = 1000\n")
        cls.d.__enter__()
        cls.anna = cls.d.token(DEMO_ANNA[0])
        cls.admin = cls.d.token(DEMO_ADMIN[0])
        st, h, cls.t = inbound(cls.d, {"external_id": "err-1", "from": {"id": "err"}, "text": "a ticket"})
        assert st == 200, cls.t

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def assertError(self, resp, status, code=None, in_message=None):
        st, h, b = resp
        self.assertEqual(st, status, b)
        self.assertTrue(h.get("Content-Type", "").startswith("application/json"), h)
        self.assertIsInstance(b, dict, b)
        self.assertIsInstance(b.get("error"), dict, b)
        self.assertIsInstance(b["error"].get("code"), str, b)
        self.assertIsInstance(b["error"].get("message"), str, b)
        if code is not None:
            self.assertEqual(b["error"]["code"], code, b)
        if in_message is not None:
            self.assertIn(in_message, b["error"]["message"], b)
        return b

    def healthy(self):
        st, h, b = self.d.req("GET", "/healthz")
        self.assertEqual(st, 200, b)

    def test_400_malformed_json(self):
        n = self.t["ticket_number"]
        b = self.assertError(self.d.req("PATCH", f"/api/v1/tickets/{n}", raw=b'{"status": "open",, }',
                                        token=self.anna), 400, "malformed_json", "offset")
        self.assertRegex(b["error"]["message"], r"offset \d+")
        self.assertError(self.d.req("PATCH", f"/api/v1/tickets/{n}", raw=b'["an", "array"]', token=self.anna),
                         400, "malformed_json")
        self.assertError(self.d.req("PATCH", f"/api/v1/tickets/{n}", raw=b'{"a": 1, "a": 2}', token=self.anna),
                         400, "malformed_json")
        self.assertError(self.d.req("PATCH", f"/api/v1/tickets/{n}", raw=b'', token=self.anna), 400,
                         "malformed_json")

    def test_400_invalid_utf8(self):
        n = self.t["ticket_number"]
        self.assertError(self.d.req("PATCH", f"/api/v1/tickets/{n}", raw=b'{"subject": "\xff\xfe bad"}',
                                    token=self.anna), 400, "invalid_utf8")
        self.assertError(self.d.req("PATCH", f"/api/v1/tickets/{n}", raw=b'{"subject": "\xd0"}', token=self.anna),
                         400, "invalid_utf8")
        raw = b'{"external_id": "u8", "from": {"id": "x"}, "text": "\xc3\x28"}'
        from sbtest import sign
        self.assertError(self.d.req("POST", "/api/v1/channels/1/inbound", raw=raw,
                                    headers={"X-Switchboard-Signature": sign(self.d.api_secret, raw)}),
                         400, "invalid_utf8")

    def test_400_deep_nesting(self):
        for body in (b"[" * 100000, b'{"a":' * 30000):
            self.assertError(self.d.req("PATCH", f"/api/v1/tickets/{self.t['ticket_number']}", raw=body,
                                        token=self.anna), 400, "malformed_json")
            self.healthy()
        self.assertError(self.d.req("POST", "/chat/session", raw=b"[" * 100000), 400, "malformed_json")
        self.healthy()

    def test_401_403(self):
        self.assertError(self.d.req("GET", "/api/v1/tickets"), 401, "unauthorized")
        self.assertError(self.d.req("GET", "/api/v1/tickets", headers={"Authorization": "Basic YTpi"}), 401)
        self.assertError(self.d.req("POST", "/api/v1/channels", {"kind": "api", "name": "x"}, token=self.anna),
                         403, "forbidden")
        self.assertError(self.d.req("POST", "/api/v1/teams", {"name": "x"}, token=self.anna), 403, "forbidden")

    def test_404(self):
        self.assertError(self.d.req("GET", "/no/such/path"), 404, "not_found")
        self.assertError(self.d.req("GET", "/api/v1/nothing-here", token=self.anna), 404, "not_found")
        self.assertError(self.d.req("GET", "/api/v2/tickets", token=self.anna), 404, "not_found")
        self.assertError(self.d.req("GET", "/api/v1/tickets/999999", token=self.anna), 404, "not_found", "999999")
        self.assertError(self.d.req("GET", "/api/v1/tickets/0x10", token=self.anna), 404)
        self.assertError(self.d.req("GET", "/api/v1/tickets/99999999999999999999999", token=self.anna), 404)
        self.assertError(self.d.req("POST", "/api/v1/tickets/999999/messages", {"text": "x"}, token=self.anna), 404)
        self.assertError(self.d.req("GET", "/api/v1/agents/424242", token=self.anna), 404)
        self.assertError(self.d.req("GET", "/api/v1/files/" + "0" * 64, token=self.anna), 404)

    def test_405(self):
        for method, path, allow in (("DELETE", "/api/v1/tickets", "GET"),
                                    ("DELETE", f"/api/v1/tickets/{self.t['ticket_number']}", "GET, PATCH"),
                                    ("PUT", "/api/v1/contacts", "GET, POST"),
                                    ("POST", "/healthz", "GET"),
                                    ("POST", "/metrics", "GET"),
                                    ("POST", "/chat/config", "GET")):
            with self.subTest(method=method, path=path):
                st, h, b = self.d.req(method, path, token=self.anna)
                self.assertError((st, h, b), 405, "method_not_allowed")
                self.assertEqual(h.get("Allow"), allow)

    def test_409(self):
        st, h, b = self.d.req("POST", "/api/v1/agents", {"email": DEMO_ANNA[0], "name": "Again", "password": "password-1"},
                              token=self.admin)
        self.assertError((st, h, b), 409, "conflict", "email")

    def test_413(self):
        big = json.dumps({"text": "x" * 300000}).encode()
        st, h, b = raw_request(self.d, b"POST /api/v1/tickets/1/messages HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(big) + big)
        self.assertEqual(st, 413, b)
        self.assertEqual(json.loads(b)["error"]["code"], "payload_too_large")
        # Chunked bodies are counted as they arrive.
        chunk = b"y" * 100000
        req = (b"POST /chat/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 3 + b"0\r\n\r\n")
        st, h, b = raw_request(self.d, req)
        self.assertEqual(st, 413, b)
        self.healthy()
        # Just under the limit is fine (and then a validation error).
        ok = b'{"text": "fits", "kind": "nope"' + b" " * 190000 + b"}"
        self.assertError(self.d.req("POST", f"/api/v1/tickets/{self.t['ticket_number']}/messages", raw=ok,
                                    token=self.anna), 422, "validation_failed", "kind")

    def test_415(self):
        self.assertError(self.d.req("PATCH", f"/api/v1/tickets/{self.t['ticket_number']}", raw=b'{"priority":"low"}',
                                    headers={"Content-Type": "text/plain"}, token=self.anna),
                         415, "unsupported_media_type")

    def test_422(self):
        n = self.t["ticket_number"]
        self.assertError(self.d.req("PATCH", f"/api/v1/tickets/{n}", {"priority": "extreme"}, token=self.anna),
                         422, "validation_failed", "priority")
        self.assertError(self.d.req("PATCH", f"/api/v1/tickets/{n}", {"status": "done"}, token=self.anna),
                         422, "validation_failed", "status")
        self.assertError(self.d.req("PATCH", f"/api/v1/tickets/{n}", {"priority": 3}, token=self.anna),
                         422, "validation_failed", "priority")
        self.assertError(self.d.req("PATCH", f"/api/v1/tickets/{n}", {"assignee_id": 424242}, token=self.anna),
                         422, "validation_failed", "assignee_id")
        self.assertError(self.d.req("PATCH", f"/api/v1/tickets/{n}", {"tags": "not-a-list"}, token=self.anna),
                         422, "validation_failed", "tags")
        self.assertError(self.d.req("PATCH", f"/api/v1/tickets/{n}", {"colour": "red"}, token=self.anna),
                         422, "unknown_field", "colour")
        self.assertError(self.d.req("POST", f"/api/v1/tickets/{n}/messages", {"text": ""}, token=self.anna),
                         422, "validation_failed", "text")
        self.assertError(self.d.req("GET", "/api/v1/tickets?status=bogus", token=self.anna), 422, "validation_failed",
                         "status")
        self.assertError(self.d.req("GET", "/api/v1/tickets?limit=1000", token=self.anna), 422, "validation_failed",
                         "limit")
        # The refused PATCHes changed nothing.
        st, h, t = self.d.req("GET", f"/api/v1/tickets/{n}", token=self.anna)
        self.assertEqual(t["ticket"]["priority"], "normal")
        self.assertIsNone(t["ticket"]["assignee_id"])

    def test_431_header_flood(self):
        many = b"".join(b"X-Flood-%d: %d\r\n" % (i, i) for i in range(200))
        st, h, b = raw_request(self.d, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        self.assertEqual(st, 431, b)
        self.assertEqual(json.loads(b)["error"]["code"], "headers_too_large")
        huge = b"X-Big: " + b"a" * 70000 + b"\r\n"
        st, h, b = raw_request(self.d, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + huge + b"\r\n")
        self.assertEqual(st, 431, b)
        st, h, b = raw_request(self.d, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(st, (414, 431), b)
        self.healthy()

    def test_garbage_request(self):
        st, h, b = raw_request(self.d, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello TLS\r\n\r\n")
        self.assertIn(st, (400, None), b)
        st, h, b = raw_request(self.d, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
        self.assertIn(st, (400, None), b)
        self.healthy()

    def test_slowloris(self):
        # Partial headers, then nothing: answered 408 (or closed) once
        # header_timeout_ms (1 s here) has passed; the daemon stays healthy.
        with socket.create_connection((self.d.host, self.d.port), timeout=15) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            self.healthy()  # others are served meanwhile
            st, h, b = read_response(s, timeout=20)
            if st is not None:
                self.assertEqual(st, 408, b)
                self.assertEqual(json.loads(b)["error"]["code"], "request_timeout")
            self.assertTrue(wait_closed(s, timeout=20))
        # Dripping a byte at a time does not extend the deadline.
        with socket.create_connection((self.d.host, self.d.port), timeout=15) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            closed = False
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    s.sendall(b"X")
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                s.settimeout(0.2)
                try:
                    data = s.recv(65536)
                    if data == b"" or data.startswith(b"HTTP/1.1 408"):
                        closed = True
                        break
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed = True
                    break
            self.assertTrue(closed, "a dripping client must be cut off")
        self.healthy()

    def test_keepalive_many_requests(self):
        with Client(self.d, keepalive=True) as c:
            for _ in range(50):
                st, h, b = c.req("GET", "/api/v1/tickets?limit=1", token=self.anna)
                self.assertEqual(st, 200, b)
            self.assertError(c.req("GET", "/api/v1/tickets/999999", token=self.anna), 404)
            st, h, b = c.req("GET", "/healthz")
            self.assertEqual(st, 200)


class RateLimitTest(unittest.TestCase):
    def test_429(self):
        with Daemon("[limits]\nrate_per_ip = 5\n") as d:
            tok = d.token(DEMO_ANNA[0])
            got = None
            with Client(d, keepalive=True) as c:
                for _ in range(300):
                    st, h, b = c.req("GET", "/api/v1/tickets?limit=1", token=tok)
                    if st == 429:
                        got = (st, h, b)
                        break
                    self.assertEqual(st, 200, b)
            self.assertIsNotNone(got, "a burst must be rate limited")
            st, h, b = got
            self.assertEqual(b["error"]["code"], "rate_limited")
            self.assertGreaterEqual(int(h["Retry-After"]), 1)
            # Health checks are never limited; the limit lifts over time.
            self.assertEqual(d.req("GET", "/healthz")[0], 200)
            wait_for(lambda: d.req("GET", "/api/v1/tickets?limit=1", token=tok)[0] == 200, timeout=15,
                     interval=0.5, msg="the rate limit to lift")
            self.assertGreaterEqual(d.metrics()["switchboard_rate_limited_total"], 1)


    def test_clients_behind_a_trusted_proxy_are_counted_apart(self):
        def burst(d, forwarded_for):
            """Requests until the first 429 (or 60), as a client behind the proxy."""
            with Client(d, keepalive=True) as c:
                for n in range(60):
                    st, _, _ = c.req("GET", "/api/v1/openapi.json",
                                     headers={"X-Forwarded-For": f"{forwarded_for}, 198.51.100.7"})
                    if st == 429:
                        return n
            return None

        # Trusted: the last X-Forwarded-For entry is the client, so each gets its own bucket.
        with Daemon("[limits]\nrate_per_ip = 1\n[http]\ntrusted_proxies = 127.0.0.1\n") as d:
            self.assertIsNotNone(burst(d, "203.0.113.1"))
            self.assertEqual(d.req("GET", "/api/v1/openapi.json")[0], 200)  # the proxy itself is another client
        # Not trusted: the header is ignored and everything counts against the peer.
        with Daemon("[limits]\nrate_per_ip = 1\n") as d:
            self.assertIsNotNone(burst(d, "203.0.113.1"))
            self.assertEqual(d.req("GET", "/api/v1/openapi.json")[0], 429)


class ConnectionLimitTest(unittest.TestCase):
    def test_503_over_max_connections(self):
        with Daemon("[http]\nmax_connections = 2\n") as d:
            held = [socket.create_connection((d.host, d.port), timeout=10) for _ in range(2)]
            try:
                # The two idle connections are accepted before this one.
                st, h, b = raw_request(d, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(st, 503, b)
                self.assertEqual(json.loads(b)["error"]["code"], "overloaded")
                self.assertEqual(h.get("Retry-After"), "1")
                self.assertEqual(h.get("Connection"), "close")
                # A held connection is served normally.
                held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                st, h, b = read_response(held[0])
                self.assertEqual(st, 200, b)
            finally:
                for s in held:
                    s.close()
            wait_for(lambda: d.req("GET", "/healthz")[0] == 200, msg="a free slot after closing the idle ones")


if __name__ == "__main__":
    unittest.main()
