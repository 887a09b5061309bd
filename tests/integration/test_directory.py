"""Agents and teams: create, validate, update, deactivate, memberships, roles, events."""
import unittest

from sbtest import DEMO_ADMIN, DEMO_ANNA, DEMO_BORIS, Daemon, event_pred


class DirectoryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.d.__enter__()
        cls.admin = cls.d.token(DEMO_ADMIN[0])
        cls.anna = cls.d.token(DEMO_ANNA[0])
        cls.boris = cls.d.token(DEMO_BORIS[0])  # supervisor

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def req(self, method, path, body=None, token=None):
        return self.d.req(method, path, body, token=token or self.admin)

    def test_agent_lifecycle(self):
        ws = self.d.stream(self.anna)
        try:
            st, _, b = self.req("POST", "/api/v1/agents", {"email": "Vera@Demo.Switchboard", "name": "Вера",
                                                           "role": "agent", "password": "vera-pass-1",
                                                           "language": "en", "team_ids": [1]})
            self.assertEqual(st, 201, b)
            vera = b["agent"]
            self.assertEqual(vera["email"], "vera@demo.switchboard")
            self.assertEqual(vera["team_ids"], [1])
            self.assertNotIn("password_hash", vera)
            ws.recv_until(event_pred("agent.created", id=vera["id"]))
        finally:
            ws.close()
        # Validation names the field.
        for body, field in (({"email": "x@y.z", "name": "X", "role": "boss", "password": "xxxxxxxx1"}, "role"),
                            ({"email": "x@y.z", "name": "X", "role": "agent", "password": "short"}, "password"),
                            ({"email": "not-an-email", "name": "X", "role": "agent", "password": "xxxxxxxx1"}, "email"),
                            ({"email": "x@y.z", "name": "X", "role": "agent", "password": "xxxxxxxx1",
                              "team_ids": [999]}, "team_ids")):
            st, _, b = self.req("POST", "/api/v1/agents", body)
            self.assertEqual(st, 422, (body, b))
            self.assertIn(field, b["error"]["message"])
        st, _, b = self.req("POST", "/api/v1/agents", {"email": "vera@demo.switchboard", "name": "Dup",
                                                       "role": "agent", "password": "xxxxxxxx1"})
        self.assertEqual(st, 409, b)

        # Vera changes her own name and password; not her role.
        c = self.d.login("vera@demo.switchboard", "vera-pass-1")
        st, _, b = c.req("PATCH", f"/api/v1/agents/{vera['id']}", {"name": "Вера Н.", "password": "vera-pass-2"},
                         headers={"X-CSRF-Token": c.csrf})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["agent"]["name"], "Вера Н.")
        st, _, b = c.req("PATCH", f"/api/v1/agents/{vera['id']}", {"role": "admin"}, headers={"X-CSRF-Token": c.csrf})
        self.assertEqual(st, 403, b)
        st, _, _ = self.d.req("POST", "/api/v1/auth/login", {"email": "vera@demo.switchboard",
                                                             "password": "vera-pass-2"})
        self.assertEqual(st, 200)
        # Another agent cannot edit Vera; the admin can deactivate her, which ends her sessions.
        st, _, b = self.req("PATCH", f"/api/v1/agents/{vera['id']}", {"name": "Hacked"}, token=self.anna)
        self.assertEqual(st, 403, b)
        st, _, b = self.req("PATCH", f"/api/v1/agents/{vera['id']}", {"active": False})
        self.assertEqual(st, 200, b)
        self.assertFalse(b["agent"]["active"])
        self.assertEqual(c.req("GET", "/api/v1/auth/me")[0], 401)
        st, _, _ = self.d.req("POST", "/api/v1/auth/login", {"email": "vera@demo.switchboard",
                                                             "password": "vera-pass-2"})
        self.assertEqual(st, 401)
        # An inactive agent cannot be assigned a ticket.
        st, _, agents = self.req("GET", "/api/v1/agents")
        self.assertIn(vera["id"], [a["id"] for a in agents["agents"]])
        self.assertEqual(self.req("GET", "/api/v1/agents/999999")[0], 404)

    def test_teams(self):
        st, _, b = self.req("POST", "/api/v1/teams", {"name": "Retention"}, token=self.anna)
        self.assertEqual(st, 403, b)  # supervisors and admins only
        ws = self.d.stream(self.anna)
        try:
            st, _, b = self.req("POST", "/api/v1/teams", {"name": "Retention", "member_ids": [2]}, token=self.boris)
            self.assertEqual(st, 201, b)
            team = b["team"]
            self.assertEqual(team["member_ids"], [2])
            ws.recv_until(event_pred("team.created", id=team["id"]))
            st, _, b = self.req("POST", "/api/v1/teams", {"name": "Retention"}, token=self.boris)
            self.assertEqual(st, 409, b)
            st, _, b = self.req("POST", "/api/v1/teams", {"name": "Ghosts", "member_ids": [424242]}, token=self.boris)
            self.assertEqual(st, 422, b)
            self.assertIn("member_ids", b["error"]["message"])
            st, _, b = self.req("PATCH", f"/api/v1/teams/{team['id']}", {"member_ids": [2, 3]}, token=self.boris)
            self.assertEqual(st, 200, b)
            self.assertEqual(sorted(b["team"]["member_ids"]), [2, 3])
            ws.recv_until(event_pred("team.updated", team__id=team["id"]))
        finally:
            ws.close()
        # Memberships show on the agents, and teams filter tickets.
        st, _, boris = self.req("GET", "/api/v1/agents/3")
        self.assertIn(team["id"], boris["agent"]["team_ids"])
        st, _, teams = self.req("GET", "/api/v1/teams", token=self.anna)
        self.assertIn("Retention", [t["name"] for t in teams["teams"]])
        self.assertEqual(self.req("DELETE", f"/api/v1/teams/{team['id']}")[0], 405)


if __name__ == "__main__":
    unittest.main()
