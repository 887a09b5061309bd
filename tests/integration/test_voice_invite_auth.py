"""INVITEs from agents' phones are authenticated ([sip] auth_invites, on by default): an
INVITE whose From user is one of our extensions must carry that extension's digest, as
Asterisk and FreeSWITCH ask of every endpoint, because a registration from the same
address proves nothing about a second device behind the same NAT (which could otherwise
place calls, through the trunk too, as any agent).

- SIPp as Anna's phone (202, registered) and as Boris's (203, never registered): the first
  INVITE gets 407 with Proxy-Authenticate, the second with the digest is answered by the
  IVR; the call log says who called and makes no customer ticket of it. A trunk's call from
  outside [trunk] allow is still refused.
- By hand: 407's header (realm, qop=auth, MD5), the same 407 for a retransmitted INVITE
  (a server transaction), an Authorization header instead of Proxy-Authorization or a nonce
  we never gave challenged again, a malformed one 400; none of these counted.
- A wrong password, and another extension's name with its own right password, are 403 and
  count toward the same per-address lockout as REGISTER's failures (either kind locks out
  both); a locked-out address gets 403 at once, without a challenge.
- auth_invites = false: a phone registered from the INVITE's address is believed without a
  challenge, as before (legacy phones), and the daemon warns at start.
"""
import os
import re
import subprocess
import tempfile
import unittest

from sbtest import Daemon, HandUac, assert_sipp_ok as ok, binary, calls_of as calls, sipp, wait_for

SIP = "[sip]\nlisten = 127.0.0.1:0\nregister_max_failures = 3\nregister_lockout_seconds = 60\n"
# loopback is not the trunk: a call that is not an extension's is refused
NOT_HERE = "[trunk]\nallow = 10.0.0.0/8\n"


def daemon_log(d):
    """The daemon's own log (stdout has the demo's passwords)."""
    with open(d.stderr_path) as f:
        return f.read()


def refused(d):
    return d.metrics().get("switchboard_voice_invites_refused_total", 0)


def proxy_authenticate(text):
    m = re.search(r"^Proxy-Authenticate: (.*)$", text, re.M)
    assert m, text
    return m.group(1).strip()


class InviteAuthTest(unittest.TestCase):
    def test_extension_is_challenged_then_its_call_connects(self):
        with Daemon(config_extra=SIP + NOT_HERE) as d:
            ok(self, sipp(d, "register", 202, keys={"expires": 3600, "final": 200},
                          extra=["-au", "202", "-ap", "demo-sip-202"]))
            # Anna's registered phone, and Boris's that never registered: each
            # proves who it is with its own digest, and the IVR answers
            ok(self, sipp(d, "caller_auth", 100, keys={"caller": "202", "challenge": 407},
                          extra=["-au", "202", "-ap", "demo-sip-202"]), d)
            ok(self, sipp(d, "caller_auth", 100, keys={"caller": "203", "challenge": 407},
                          extra=["-au", "203", "-ap", "demo-sip-203"]), d)
            rows = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(calls(d)), msg="two calls logged")
            for row, ext in zip(rows, ("203", "202")):
                self.assertEqual((row["from"], row["did"], row["status"]), (ext, "100", "abandoned"), row)
                self.assertIsNone(row["ticket_id"], row)  # an agent's call is no customer's ticket
            self.assertEqual(refused(d), 0)
            # a caller that is not one of our extensions is the trunk's business, as before
            ok(self, sipp(d, "caller_rejected", 100, keys={"code": 403, "codecs": "8", "caller": "79991234567"}))
            self.assertEqual(refused(d), 1)
            self.assertEqual(len(calls(d)), 2)
            self.assertNotIn("demo-sip-20", daemon_log(d))
            d.stop()

    def test_challenge_by_hand(self):
        with Daemon(config_extra=SIP) as d:
            p = HandUac(d, "202")
            try:
                st, text, _, again = p.invite(resend=True)
                self.assertEqual(st, 407, text)
                self.assertIn("SIP/2.0 407 Proxy Authentication Required", text)
                self.assertNotIn("WWW-Authenticate", text)
                pa = proxy_authenticate(text)
                for part in ('Digest realm="switchboard"', 'qop="auth"', "algorithm=MD5", 'nonce="'):
                    self.assertIn(part, pa)
                # a retransmission is answered by the same transaction: the same nonce
                self.assertEqual(proxy_authenticate(again), pa)
                # the right digest in Authorization is not the answer to a 407
                st, text, _, _ = p.invite(header="Authorization", value=p.digest(pa, "202", "demo-sip-202"))
                self.assertEqual(st, 407, text)
                # a nonce we never gave: challenged again
                st = p.invite(header="Proxy-Authorization",
                              value=p.digest(pa, "202", "demo-sip-202", nonce="00ff"))[0]
                self.assertEqual(st, 407)
                # malformed: 400
                st = p.invite(header="Proxy-Authorization", value="Digest username=")[0]
                self.assertEqual(st, 400)
                # none of these is a wrong password
                m = d.metrics()
                self.assertEqual(m["switchboard_voice_invites_refused_total"], 0)
                self.assertEqual(m["switchboard_voice_register_lockouts_total"], 0)
                # the wrong password and another extension's name (with its own right
                # password) are refused and counted
                st = p.invite(header="Proxy-Authorization", value=p.digest(pa, "202", "guess-1"))[0]
                self.assertEqual(st, 403)
                st = p.invite(header="Proxy-Authorization", value=p.digest(pa, "203", "demo-sip-203"))[0]
                self.assertEqual(st, 403)
                self.assertEqual(refused(d), 2)
            finally:
                p.close()
            self.assertEqual(calls(d), [])  # refused INVITEs are not calls
            d.stop()

    def test_replayed_digest_is_challenged_again(self):
        with Daemon(config_extra=SIP) as d:
            p = HandUac(d, "202")
            try:
                st, text, _, _ = p.invite(number="999")
                self.assertEqual(st, 407, text)
                pa = proxy_authenticate(text)
                good = p.digest(pa, "202", "demo-sip-202", number="999")
                # admitted (then 404: no such number), once
                self.assertEqual(p.invite(number="999", header="Proxy-Authorization", value=good)[0], 404)
                # the same Proxy-Authorization in a new INVITE is a replay: a fresh challenge
                st, text, _, _ = p.invite(number="999", header="Proxy-Authorization", value=good)
                self.assertEqual(st, 407, text)
                self.assertIn("stale=true", proxy_authenticate(text))
                # the same nonce counted on (nc 2) is the phone's next request: admitted
                nxt = p.digest(pa, "202", "demo-sip-202", number="999", nc=2)
                self.assertEqual(p.invite(number="999", header="Proxy-Authorization", value=nxt)[0], 404)
                self.assertEqual(p.invite(number="999", header="Proxy-Authorization", value=nxt)[0], 407)
                # a replay is not a wrong password: nothing toward the lockout
                self.assertEqual(refused(d), 0)
                self.assertEqual(d.metrics()["switchboard_voice_register_lockouts_total"], 0)
            finally:
                p.close()
            d.stop()

    def test_wrong_credentials_are_refused_and_lock_the_address_out(self):
        with Daemon(config_extra=SIP) as d:
            # a wrong password: 407, then 403
            ok(self, sipp(d, "caller_auth_final", 100, keys={"caller": "202", "challenge": 407, "final": 403},
                          extra=["-au", "202", "-ap", "guess-1"]), d)
            self.assertEqual(refused(d), 1)
            # Boris's own right credentials do not make a call as Anna
            ok(self, sipp(d, "caller_auth_final", 100, keys={"caller": "202", "challenge": 407, "final": 403},
                          extra=["-au", "203", "-ap", "demo-sip-203"]), d)
            self.assertEqual(refused(d), 2)
            self.assertEqual(d.metrics()["switchboard_voice_register_lockouts_total"], 0)
            # the third failure from this address locks it out (register_max_failures = 3) ...
            ok(self, sipp(d, "caller_auth_final", 100, keys={"caller": "202", "challenge": 407, "final": 403},
                          extra=["-au", "202", "-ap", "guess-3"]), d)
            m = d.metrics()
            self.assertEqual(m["switchboard_voice_invites_refused_total"], 3)
            self.assertEqual(m["switchboard_voice_register_lockouts_total"], 1)
            # ... so its INVITEs get 403 at once, with no challenge to answer
            ok(self, sipp(d, "caller_rejected", 100, keys={"code": 403, "codecs": "8", "caller": "202"}))
            self.assertEqual(refused(d), 4)
            # and so do its REGISTERs: the lockout is the registrar's
            ok(self, sipp(d, "register_locked", 202))
            self.assertEqual(d.metrics()["switchboard_voice_registrations"], 0)
            self.assertEqual(calls(d), [])
            log = daemon_log(d)
            self.assertIn("invite refused user=202 src=127.0.0.1", log)
            self.assertIn("digest lockout src=127.0.0.1", log)
            for secret in ("guess-", "demo-sip-20"):
                self.assertNotIn(secret, log)
            d.stop()

    def test_register_failures_count_toward_the_invite_lockout(self):
        with Daemon(config_extra=SIP) as d:
            for guess in ("guess-1", "guess-2"):
                ok(self, sipp(d, "register", 202, keys={"expires": 3600, "final": 403},
                              extra=["-au", "202", "-ap", guess]))
            ok(self, sipp(d, "caller_auth_final", 100, keys={"caller": "202", "challenge": 407, "final": 403},
                          extra=["-au", "202", "-ap", "guess-3"]), d)
            self.assertEqual(d.metrics()["switchboard_voice_register_lockouts_total"], 1)
            ok(self, sipp(d, "caller_rejected", 100, keys={"code": 403, "codecs": "8", "caller": "202"}))
            d.stop()

    def test_auth_invites_off_believes_a_registered_phone(self):
        with Daemon(config_extra=SIP + "auth_invites = false\n" + NOT_HERE) as d:
            self.assertIn("[sip] auth_invites = false", daemon_log(d))
            ok(self, sipp(d, "register", 201, keys={"expires": 3600, "final": 200},
                          extra=["-au", "201", "-ap", "demo-sip-201"]))
            # registered from this address: no challenge, the IVR answers
            ok(self, sipp(d, "caller_dtmf", 100, keys={"digit": "1", "caller": "201"}), d)
            row = wait_for(lambda: calls(d), msg="call logged")[0]
            self.assertEqual((row["from"], row["did"], row["ticket_id"]), ("201", "100", None), row)
            # an extension not registered from here is a stranger: outside [trunk] allow, 403
            ok(self, sipp(d, "caller_rejected", 100, keys={"code": 403, "codecs": "8", "caller": "202"}))
            self.assertEqual(refused(d), 1)
            d.stop()

    def test_config_errors(self):
        with tempfile.TemporaryDirectory() as tmp:
            ini = os.path.join(tmp, "bad.ini")
            with open(ini, "w") as f:
                f.write(f"[server]\nlisten = 127.0.0.1:0\ndata_dir = {tmp}/data\n[sip]\nauth_invites = maybe\n")
            r = subprocess.run([binary(), "serve", "--config", ini], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("bad value for [sip] auth_invites", r.stderr)


if __name__ == "__main__":
    unittest.main()
