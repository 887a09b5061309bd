"""The command line: version, db migrate, user add/list/passwd, token create/revoke,
channel add/list, configuration errors. Runs against a serving daemon where the
command is meant to be used while it serves."""
import json
import os
import subprocess
import tempfile
import unittest

from sbtest import Daemon, binary, wait_for


def run(*args, input=None):
    return subprocess.run([binary(), *args], input=input, capture_output=True, text=True, timeout=120)


class CliTest(unittest.TestCase):
    def test_version_usage_and_errors(self):
        r = run("version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^switchboard \d+\.\d+\.\d+\n$")
        r = run()
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage:", r.stderr)
        r = run("teleport")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command", r.stderr)
        r = run("serve", "--frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown option", r.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            ini = os.path.join(tmp, "bad.ini")
            with open(ini, "w") as f:
                f.write("[server]\nlisten = 127.0.0.1:0\n[limits]\nrate_per_ipp = 5\n")
            r = run("serve", "--config", ini)
            self.assertEqual(r.returncode, 2)
            self.assertIn("unknown key [limits] rate_per_ipp", r.stderr)
            r = run("serve", "--config", os.path.join(tmp, "missing.ini"))
            self.assertEqual(r.returncode, 2)
            self.assertIn("cannot open", r.stderr)
            r = run("serve", "--listen", "nonsense:port", "--data", tmp)
            self.assertEqual(r.returncode, 2)

    def test_db_migrate_on_a_fresh_directory(self):
        with tempfile.TemporaryDirectory() as tmp:
            data = os.path.join(tmp, "data")
            r = run("db", "migrate", "--data", data)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"schema version \d+")
            again = run("db", "migrate", "--data", data)
            self.assertEqual(again.stdout, r.stdout)  # idempotent

    def test_users_tokens_channels_while_serving(self):
        with Daemon(seed=False) as d:
            # user add: password from an option or from stdin; bad input refused.
            r = d.cli("user", "add", "Olga@Example.RU", "--name", "Ольга", "--role", "admin", "--password", "first-pass-1")
            self.assertEqual(r.returncode, 0, r.stderr)
            created = json.loads(r.stdout)
            self.assertEqual(created["email"], "olga@example.ru")
            r = d.cli("user", "add", "ivan@example.ru", "--name", "Иван", "--role", "agent", input="stdin-pass-1\n")
            self.assertEqual(r.returncode, 0, r.stderr)
            r = d.cli("user", "add", "olga@example.ru", "--name", "Dup", "--role", "agent", "--password", "xxxxxxxx1")
            self.assertEqual(r.returncode, 1)
            self.assertIn("exists", r.stderr)
            r = d.cli("user", "add", "x@example.ru", "--name", "X", "--role", "boss", "--password", "xxxxxxxx1")
            self.assertEqual(r.returncode, 2)
            r = d.cli("user", "add", "y@example.ru", "--name", "Y", "--role", "agent", "--password", "short")
            self.assertEqual(r.returncode, 2)
            r = d.cli("user", "list")
            self.assertEqual(r.returncode, 0)
            self.assertIn("olga@example.ru", r.stdout)
            self.assertIn("ivan@example.ru", r.stdout)

            # The daemon sees CLI changes at once: login works with the stdin password.
            st, _, b = d.req("POST", "/api/v1/auth/login", {"email": "ivan@example.ru", "password": "stdin-pass-1"})
            self.assertEqual(st, 200, b)
            r = d.cli("user", "passwd", "ivan@example.ru", "--password", "second-pass-2")
            self.assertEqual(r.returncode, 0, r.stderr)
            st, _, _ = d.req("POST", "/api/v1/auth/login", {"email": "ivan@example.ru", "password": "stdin-pass-1"})
            self.assertEqual(st, 401)
            st, _, _ = d.req("POST", "/api/v1/auth/login", {"email": "ivan@example.ru", "password": "second-pass-2"})
            self.assertEqual(st, 200)
            r = d.cli("user", "passwd", "nobody@example.ru", "--password", "whatever-1")
            self.assertEqual(r.returncode, 1)

            # token create prints only the token; revoke stops it.
            r = d.cli("token", "create", "--agent", "olga@example.ru")
            self.assertEqual(r.returncode, 0, r.stderr)
            token = r.stdout.strip()
            self.assertRegex(token, r"^sbt_[0-9a-f]{64}$")
            self.assertEqual(d.req("GET", "/api/v1/agents", token=token)[0], 200)
            r = d.cli("token", "create", "--agent", "nobody@example.ru")
            self.assertEqual(r.returncode, 1)

            # channel add prints JSON with the id (and the secret for api channels).
            r = d.cli("channel", "add", "api", "--name", "Shop", "--callback-url", "http://127.0.0.1:9/cb")
            self.assertEqual(r.returncode, 0, r.stderr)
            api = json.loads(r.stdout)
            self.assertEqual(api["kind"], "api")
            self.assertRegex(api["secret"], r"^[0-9a-f]{64}$")
            r = d.cli("channel", "add", "webchat", "--name", "Site")
            web = json.loads(r.stdout)
            self.assertNotIn("secret", web)
            self.assertIn(f'data-channel="{web["id"]}"', web["widget_snippet"])
            r = d.cli("channel", "add", "api", "--name", "Bad", "--callback-url", "ftp://x")
            self.assertEqual(r.returncode, 2)
            st, _, b = d.req("GET", "/api/v1/channels", token=token)
            self.assertEqual(st, 200)
            self.assertEqual({c["id"] for c in b["channels"]}, {api["id"], web["id"]})
            self.assertTrue(all("secret" not in c for c in b["channels"]))
            r = d.cli("channel", "list")
            self.assertEqual({c["id"] for c in json.loads(r.stdout)}, {api["id"], web["id"]})

            r = d.cli("token", "revoke", token)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(d.req("GET", "/api/v1/agents", token=token)[0], 401)
            r = d.cli("token", "revoke", token)
            self.assertEqual(r.returncode, 1)


if __name__ == "__main__":
    unittest.main()
