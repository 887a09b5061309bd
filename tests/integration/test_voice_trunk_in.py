"""Who may call our numbers: an INVITE that is not from one of our extensions comes from a
SIP trunk and must come from an address in [trunk] allow (else 403) and, when [trunk]
inbound_username is set, pass digest authentication (401, then 403 for wrong
credentials, counted toward the source's lockout). SIPp plays the provider; a few
INVITEs are sent by hand to see the exact answers. With [trunk] register we REGISTER at
a SIPp registrar that checks our digest, which then calls our registered user with the
number in To; a registrar refusing our credentials is counted and logged."""
import os
import re
import subprocess
import tempfile
import unittest

from types import SimpleNamespace

from sbtest import Daemon, HandUac, assert_sipp_ok as ok, binary, calls_of as calls, free_port, sipp, sipp_start, wait_for

SIP = "[sip]\nlisten = 127.0.0.1:0\nregister_max_failures = 3\nregister_lockout_seconds = 60\n"
TRUNK_USER, TRUNK_PASS = "provider-7", "trunk-secret-1"


class TrunkInboundTest(unittest.TestCase):
    def test_allow_list_refuses_strangers_not_our_phones(self):
        with Daemon(config_extra=SIP + "[trunk]\nallow = 10.0.0.0/8, 2001:db8::/32\n") as d:
            # 127.0.0.1 is not in the list: 403, twice, logged once, not a call
            ok(self, sipp(d, "caller_rejected", 100, keys={"code": 403, "codecs": "8"}))
            ok(self, sipp(d, "caller_rejected", 100, keys={"code": 403, "codecs": "8"}))
            self.assertEqual(d.metrics()["switchboard_voice_invites_refused_total"], 2)
            self.assertEqual(d.log().count("invite refused src=127.0.0.1"), 1)
            self.assertEqual(calls(d), [])
            # a phone of ours is not the trunk's: the allow-list does not apply, its
            # extension's digest does (407), and then its call goes through (to a
            # number nobody has: 404 from the IVR, after the admission)
            ok(self, sipp(d, "register", 201, keys={"expires": 3600, "final": 200},
                          extra=["-au", "201", "-ap", "demo-sip-201"]))
            ok(self, sipp(d, "caller_auth_final", 999, keys={"challenge": 407, "final": 404, "caller": "201"},
                          extra=["-au", "201", "-ap", "demo-sip-201"]))
            # registered from this address is not enough: without the digest, no call
            ok(self, sipp(d, "caller_rejected", 999, keys={"code": 407, "codecs": "8", "caller": "201"}))
            self.assertEqual(d.metrics()["switchboard_voice_invites_refused_total"], 2)
            d.stop()

    def test_allow_list_admits_the_provider(self):
        with Daemon(config_extra=SIP + "[trunk]\nallow = 192.0.2.10 127.0.0.0/8\n") as d:
            ok(self, sipp(d, "caller_dtmf", 100, keys={"digit": "1", "caller": "79991234567"}))
            row = wait_for(lambda: calls(d), msg="call logged")[0]
            self.assertEqual((row["from"], row["did"], row["ivr_path"]), ("79991234567", "100", "1"))
            self.assertEqual(d.metrics()["switchboard_voice_invites_refused_total"], 0)
            d.stop()

    def test_digest_challenge_refusal_and_lockout(self):
        extra = f"[trunk]\ninbound_username = {TRUNK_USER}\ninbound_password = {TRUNK_PASS}\n"
        with Daemon(config_extra=SIP + extra) as d:
            # the provider with the right credentials: challenged, then answered by the IVR
            ok(self, sipp(d, "caller_auth", 100, keys={"caller": "79990001111", "challenge": 401},
                          extra=["-au", TRUNK_USER, "-ap", TRUNK_PASS]))
            row = wait_for(lambda: calls(d), msg="call logged")[0]
            self.assertEqual((row["from"], row["did"], row["status"]), ("79990001111", "100", "abandoned"))
            p = HandUac(d, "79991112233")
            try:
                st, challenge, cid, _ = p.invite()
                self.assertEqual(st, 401)
                www = re.search(r"^WWW-Authenticate: (.*)$", challenge, re.M).group(1)
                self.assertIn('qop="auth"', www)
                # a wrong password: 403, counted
                st = p.invite(header="Authorization", value=p.digest(www, TRUNK_USER, "guess-1"), call_id=cid)[0]
                self.assertEqual(st, 403)
                # another user name with the right password is as wrong
                st = p.invite(header="Authorization", value=p.digest(www, "someone", TRUNK_PASS), call_id=cid)[0]
                self.assertEqual(st, 403)
                # a malformed Authorization: 400
                st = p.invite(header="Authorization", value="Digest username=", call_id=cid)[0]
                self.assertEqual(st, 400)
                # a nonce we never gave: challenged again, not counted
                st = p.invite(header="Authorization", value=p.digest('realm="switchboard", nonce="00ff"', TRUNK_USER, TRUNK_PASS))[0]
                self.assertEqual(st, 401)
                m = d.metrics()
                self.assertEqual(m["switchboard_voice_invites_refused_total"], 2)
                self.assertEqual(m["switchboard_voice_register_lockouts_total"], 0)
                # the third failure locks the address out: then even no digest gets 403 at once
                st = p.invite(header="Authorization", value=p.digest(www, TRUNK_USER, "guess-3"), call_id=cid)[0]
                self.assertEqual(st, 403)
                self.assertEqual(d.metrics()["switchboard_voice_register_lockouts_total"], 1)
                st = p.invite()[0]
                self.assertEqual(st, 403)
            finally:
                p.close()
            self.assertEqual(len(calls(d)), 1)  # refused INVITEs are not calls
            log = d.log()
            self.assertIn("invite refused user=provider-7 src=127.0.0.1", log)
            self.assertNotIn(TRUNK_PASS, log)
            self.assertNotIn("guess-", log)
            d.stop()

    def test_allow_and_digest_together(self):
        extra = (f"[trunk]\nallow = 10.0.0.0/8\ninbound_username = {TRUNK_USER}\n"
                 f"inbound_password = {TRUNK_PASS}\n")
        with Daemon(config_extra=SIP + extra) as d:
            p = HandUac(d, "79991112233")
            try:
                # outside the list: 403 without a challenge, whatever the credentials
                st = p.invite()[0]
                self.assertEqual(st, 403)
            finally:
                p.close()
            d.stop()

    def test_registration_trunk(self):
        """[trunk] register: we REGISTER with the trunk's digest; the provider then calls our
        registered user with the number in To, and the IVR of that number answers."""
        tp, sp = free_port(), free_port()
        # the provider listens before we start (a failed REGISTER is retried only after a while)
        provider = sipp_start(SimpleNamespace(sip_port=sp), "trunk_registrar", "trunk", local_port=tp, timeout=40,
                              keys={"user": TRUNK_USER, "password": TRUNK_PASS, "expires": 120, "did": "100",
                                    "caller": "79995556677", "talk_ms": 1500})
        try:
            config = (f"[sip]\nlisten = 127.0.0.1:{sp}\n[trunk]\nhost = 127.0.0.1:{tp}\nusername = {TRUNK_USER}\n"
                      f"password = {TRUNK_PASS}\nregister = true\nregister_expires = 120\nallow = 127.0.0.1\n")
            with Daemon(config_extra=config) as d:
                r = provider.wait()
                ok(self, r)
                self.assertEqual(d.metrics()["switchboard_voice_trunk_registered"], 1)
                row = wait_for(lambda: calls(d), msg="call logged")[0]
                self.assertEqual((row["from"], row["to"], row["did"]), ("79995556677", "100", "100"), row)
                self.assertNotIn(TRUNK_PASS, d.log())
                d.stop()
        finally:
            provider.kill()

    def test_registration_refused(self):
        tp = free_port()
        provider = sipp_start(SimpleNamespace(sip_port=free_port()), "trunk_registrar", "trunk", local_port=tp,
                              timeout=20, keys={"user": TRUNK_USER, "password": "another", "expires": 120,
                                                "did": "100", "caller": "79995556677", "talk_ms": 1500})
        try:
            config = (f"[sip]\nlisten = 127.0.0.1:0\n[trunk]\nhost = 127.0.0.1:{tp}\nusername = {TRUNK_USER}\n"
                      f"password = {TRUNK_PASS}\nregister = true\n")
            with Daemon(config_extra=config) as d:
                wait_for(lambda: d.metrics().get("switchboard_voice_trunk_register_failures_total", 0) >= 1,
                         timeout=15, msg="the refusal counted")
                self.assertEqual(d.metrics()["switchboard_voice_trunk_registered"], 0)
                self.assertIn("registration at the trunk failed: status 403", d.log())
                d.stop()
        finally:
            provider.kill()

    def test_config_errors(self):
        cases = [("allow = 10.1.2.3/8\n", "bad value for [trunk] allow"),
                 ("allow = sip.example.org\n", "bad value for [trunk] allow"),
                 ("allow = " + " ".join(f"10.0.0.{i}" for i in range(40)) + "\n", "bad value for [trunk] allow"),
                 ("inbound_username = a b\n", "bad value for [trunk] inbound_username"),
                 ("inbound_password = " + "q" * 200 + "\n", "bad value for [trunk] inbound_password"),
                 ("register = maybe\n", "bad value for [trunk] register"),
                 ("register_expires = 30\n", "bad value for [trunk] register_expires"),
                 ("register = true\n", "[trunk] register needs host and username")]
        with tempfile.TemporaryDirectory() as tmp:
            ini = os.path.join(tmp, "bad.ini")
            for line, message in cases:
                with open(ini, "w") as f:
                    f.write(f"[server]\nlisten = 127.0.0.1:0\ndata_dir = {tmp}/data\n[trunk]\n" + line)
                r = subprocess.run([binary(), "serve", "--config", ini], capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 2, (line, r.stderr))
                self.assertIn(message, r.stderr)
                self.assertNotIn("q" * 200, r.stderr + r.stdout)


if __name__ == "__main__":
    unittest.main()
