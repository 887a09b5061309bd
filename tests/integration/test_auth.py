"""Login/session cookies, CSRF, logout, bearer tokens from the CLI, revocation, roles."""
import unittest

from sbtest import DEMO_ADMIN, DEMO_ANNA, DEMO_BORIS, Client, Daemon


class AuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.d.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def test_login_sets_cookies_and_me_works(self):
        c = Client(self.d)
        st, h, b = c.req("POST", "/api/v1/auth/login", {"email": DEMO_ADMIN[0], "password": DEMO_ADMIN[1]})
        self.assertEqual(st, 200, b)
        self.assertIn("csrf_token", b)
        self.assertEqual(b["agent"]["email"], DEMO_ADMIN[0])
        self.assertEqual(b["agent"]["role"], "admin")
        cookies = h.get_all("Set-Cookie")
        session = [x for x in cookies if x.startswith("sb_session=")]
        self.assertEqual(len(session), 1, cookies)
        attrs = [a.strip().lower() for a in session[0].split(";")]
        self.assertIn("httponly", attrs)
        self.assertIn("samesite=strict", attrs)
        csrf = [x for x in cookies if x.startswith("sb_csrf=")]
        self.assertEqual(len(csrf), 1, cookies)
        self.assertEqual(c.csrf, b["csrf_token"])
        self.assertNotIn("httponly", csrf[0].lower(), "the page script must be able to read sb_csrf")
        self.assertIn("no-store", h.get("Cache-Control", ""))

        st, h, me = c.req("GET", "/api/v1/auth/me")
        self.assertEqual(st, 200, me)
        self.assertEqual(me["agent"]["email"], DEMO_ADMIN[0])
        self.assertNotIn("password_hash", me["agent"])

    def test_email_is_case_insensitive(self):
        st, h, b = self.d.req("POST", "/api/v1/auth/login",
                              {"email": "  Anna@Demo.Switchboard ", "password": DEMO_ANNA[1]})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["agent"]["email"], DEMO_ANNA[0])

    def test_csrf_required_for_cookie_writes(self):
        c = self.d.login(*DEMO_BORIS)
        st, h, me = c.req("GET", "/api/v1/auth/me")
        self.assertEqual(st, 200, me)
        agent_id = me["agent"]["id"]
        # Without the header: refused, and nothing changed.
        st, h, b = c.req("PATCH", f"/api/v1/agents/{agent_id}", {"name": "Boris CSRF"})
        self.assertEqual(st, 403, b)
        self.assertEqual(b["error"]["code"], "csrf_failed")
        # A wrong header: refused too.
        st, h, b = c.req("PATCH", f"/api/v1/agents/{agent_id}", {"name": "Boris CSRF"},
                         headers={"X-CSRF-Token": "0" * 32})
        self.assertEqual(st, 403, b)
        self.assertEqual(b["error"]["code"], "csrf_failed")
        st, h, me = c.req("GET", "/api/v1/auth/me")
        self.assertNotEqual(me["agent"]["name"], "Boris CSRF")
        # With it: accepted.
        st, h, b = c.req("PATCH", f"/api/v1/agents/{agent_id}", {"name": "Boris CSRF"},
                         headers={"X-CSRF-Token": c.csrf})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["agent"]["name"], "Boris CSRF")
        st, h, me = c.req("GET", "/api/v1/auth/me")
        self.assertEqual(me["agent"]["name"], "Boris CSRF")

    def test_logout_invalidates_the_session(self):
        c = self.d.login(*DEMO_ANNA)
        saved = dict(c.cookies)
        self.assertEqual(c.req("GET", "/api/v1/auth/me")[0], 200)
        st, h, b = c.req("POST", "/api/v1/auth/logout", headers={"X-CSRF-Token": c.csrf})
        self.assertEqual(st, 200, b)
        cleared = [x for x in h.get_all("Set-Cookie") if x.startswith("sb_session=")]
        self.assertTrue(cleared and "max-age=0" in cleared[0].lower(), h.get_all("Set-Cookie"))
        # The browser dropped the cookie ...
        st, h, b = c.req("GET", "/api/v1/auth/me")
        self.assertEqual(st, 401, b)
        # ... and a stolen copy of the old cookie is dead on the server too.
        old = Client(self.d)
        old.cookies = saved
        st, h, b = old.req("GET", "/api/v1/auth/me")
        self.assertEqual(st, 401, b)
        self.assertEqual(b["error"]["code"], "unauthorized")

    def test_wrong_password_and_unknown_email(self):
        for body in ({"email": DEMO_ADMIN[0], "password": "wrong-password"},
                     {"email": "nobody@demo.switchboard", "password": "whatever-1"}):
            c = Client(self.d)
            st, h, b = c.req("POST", "/api/v1/auth/login", body)
            self.assertEqual(st, 401, b)
            self.assertEqual(b["error"]["code"], "invalid_credentials")
            self.assertNotIn("sb_session", c.cookies)

    def test_login_validation(self):
        st, h, b = self.d.req("POST", "/api/v1/auth/login", {"email": DEMO_ADMIN[0]})
        self.assertEqual(st, 422, b)
        self.assertIn("password", b["error"]["message"])
        st, h, b = self.d.req("POST", "/api/v1/auth/login", {"email": "a@b.c", "password": "x" * 9, "otp": 1})
        self.assertEqual(st, 422, b)
        self.assertEqual(b["error"]["code"], "unknown_field")
        st, h, b = self.d.req("GET", "/api/v1/auth/login")
        self.assertEqual(st, 405, b)
        self.assertEqual(h.get("Allow"), "POST")

    def test_no_credentials(self):
        st, h, b = self.d.req("GET", "/api/v1/tickets")
        self.assertEqual(st, 401, b)
        self.assertEqual(b["error"]["code"], "unauthorized")
        st, h, b = self.d.req("GET", "/api/v1/tickets", token="sbt_" + "0" * 64)
        self.assertEqual(st, 401, b)

    def test_bearer_token_and_revoke(self):
        tok = self.d.token(DEMO_ANNA[0])
        st, h, b = self.d.req("GET", "/api/v1/auth/me", token=tok)
        self.assertEqual(st, 200, b)
        self.assertEqual(b["agent"]["email"], DEMO_ANNA[0])
        # Bearer requests need no CSRF header.
        st, h, b = self.d.req("GET", "/api/v1/tickets", token=tok)
        self.assertEqual(st, 200, b)
        p = self.d.cli("token", "revoke", tok)
        self.assertEqual(p.returncode, 0, p.stderr)
        st, h, b = self.d.req("GET", "/api/v1/auth/me", token=tok)
        self.assertEqual(st, 401, b)
        # Revoking twice: an error, the token stays dead.
        p = self.d.cli("token", "revoke", tok)
        self.assertNotEqual(p.returncode, 0)
        # A stream with a revoked token is refused before the upgrade.
        from sbtest import WebSocket, WSHandshakeError
        with self.assertRaises(WSHandshakeError) as cm:
            WebSocket.connect(self.d, "/api/v1/stream?access_token=" + tok)
        self.assertEqual(cm.exception.status, 401)

    def test_token_for_unknown_agent(self):
        p = self.d.cli("token", "create", "--agent", "ghost@demo.switchboard")
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(p.stdout.strip(), "")

    def test_roles(self):
        anna = self.d.token(DEMO_ANNA[0])
        admin = self.d.token(DEMO_ADMIN[0])
        new_agent = {"email": "role-test@demo.switchboard", "name": "Role Test", "role": "agent",
                     "password": "role-test-1"}
        st, h, b = self.d.req("POST", "/api/v1/agents", new_agent, token=anna)
        self.assertEqual(st, 403, b)
        self.assertEqual(b["error"]["code"], "forbidden")
        st, h, b = self.d.req("POST", "/api/v1/channels", {"kind": "api", "name": "Anna's"}, token=anna)
        self.assertEqual(st, 403, b)
        self.assertEqual(b["error"]["code"], "forbidden")
        # The refused creations left nothing behind.
        st, h, agents = self.d.req("GET", "/api/v1/agents", token=admin)
        self.assertEqual(st, 200, agents)
        self.assertNotIn(new_agent["email"], [a["email"] for a in agents["agents"]])

        st, h, b = self.d.req("POST", "/api/v1/agents", new_agent, token=admin)
        self.assertEqual(st, 201, b)
        self.assertEqual(b["agent"]["email"], new_agent["email"])
        st, h, b = self.d.req("POST", "/api/v1/agents", new_agent, token=admin)
        self.assertEqual(st, 409, b)
        st, h, b = self.d.req("POST", "/api/v1/channels", {"kind": "api", "name": "Admin's"}, token=admin)
        self.assertEqual(st, 201, b)
        self.assertEqual(b["channel"]["kind"], "api")
        self.assertRegex(b["channel"]["secret"], "^[0-9a-f]{64}$")
        # The new agent can log in with the password the admin gave.
        c = self.d.login(new_agent["email"], new_agent["password"])
        st, h, me = c.req("GET", "/api/v1/auth/me")
        self.assertEqual(me["agent"]["role"], "agent")

    def test_agent_cannot_promote_self(self):
        anna = self.d.token(DEMO_ANNA[0])
        st, h, me = self.d.req("GET", "/api/v1/auth/me", token=anna)
        st, h, b = self.d.req("PATCH", f"/api/v1/agents/{me['agent']['id']}", {"role": "admin"}, token=anna)
        self.assertIn(st, (403, 422), b)
        st, h, me2 = self.d.req("GET", "/api/v1/auth/me", token=anna)
        self.assertEqual(me2["agent"]["role"], "agent")


if __name__ == "__main__":
    unittest.main()
