"""Voice registrar against SIPp (sip-tester) on loopback: digest REGISTER with the
demo extensions' passwords, a wrong password refused without a binding, lockout of
a source after repeated failures, unregister (Expires: 0), a password set with the
CLI picked up on SIGHUP, and a clean SIGTERM with voice running."""
import signal
import unittest

from sbtest import Daemon, free_port, sipp, wait_for

SIP = "[sip]\nlisten = 127.0.0.1:0\nregister_max_failures = 3\nregister_lockout_seconds = 60\n"


def bindings(d):
    return d.metrics().get("switchboard_voice_registrations", -1)


class VoiceRegisterTest(unittest.TestCase):
    def test_register_refuse_lockout_unregister(self):
        with Daemon(config_extra=SIP) as d:
            self.assertIsNotNone(d.sip_port)
            r = sipp(d, "register", 201, keys={"expires": 3600, "final": 200},
                     extra=["-au", "201", "-ap", "demo-sip-201"])
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
            self.assertEqual(bindings(d), 1)
            # a second device of the same extension, over TCP
            r = sipp(d, "register", 201, keys={"expires": 600, "final": 200}, transport="t1",
                     extra=["-au", "201", "-ap", "demo-sip-201"])
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
            self.assertEqual(bindings(d), 2)
            # wrong password: 403, no binding, counted
            r = sipp(d, "register", 202, keys={"expires": 3600, "final": 403},
                     extra=["-au", "202", "-ap", "not-the-password"])
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
            self.assertEqual(bindings(d), 2)
            m = d.metrics()
            self.assertEqual(m["switchboard_voice_register_failures_total"], 1)
            # an unknown extension fails the same way
            r = sipp(d, "register", 299, keys={"expires": 3600, "final": 403}, extra=["-au", "299", "-ap", "whatever1"])
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
            # the third failure from this address locks it out ...
            r = sipp(d, "register", 202, keys={"expires": 3600, "final": 403}, extra=["-au", "202", "-ap", "guess-3"])
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
            self.assertEqual(d.metrics()["switchboard_voice_register_lockouts_total"], 1)
            # ... so even the right password is refused at once, without a challenge
            r = sipp(d, "register_locked", 202)
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
            self.assertEqual(bindings(d), 2)
            with open(d.stderr_path) as f:
                self.assertNotIn("demo-sip-20", f.read())  # passwords never reach the log
            d.stop()

    def test_unregister_and_cli_password(self):
        with Daemon(config_extra=SIP) as d:
            lp = free_port()
            r = sipp(d, "register", 203, keys={"expires": 3600, "final": 200}, local_port=lp,
                     extra=["-au", "203", "-ap", "demo-sip-203"])
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
            self.assertEqual(bindings(d), 1)
            # Expires: 0 from the same contact removes its binding
            r = sipp(d, "register", 203, keys={"expires": 0, "final": 200}, local_port=lp,
                     extra=["-au", "203", "-ap", "demo-sip-203"])
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
            self.assertEqual(bindings(d), 0)
            # a new SIP password through the CLI, picked up on SIGHUP
            cli = d.cli("user", "sip-password", "anna@demo.switchboard", "--extension", "222",
                        "--password", "new-sip-pass-1")
            self.assertEqual(cli.returncode, 0, cli.stderr)
            self.assertIn('"extension":"222"', cli.stdout)
            bad = d.cli("user", "sip-password", "anna@demo.switchboard", "--extension", "x1",
                        "--password", "new-sip-pass-1")
            self.assertEqual(bad.returncode, 2)
            clash = d.cli("user", "sip-password", "boris@demo.switchboard", "--extension", "222",
                          "--password", "new-sip-pass-1")
            self.assertEqual(clash.returncode, 1)
            d.proc.send_signal(signal.SIGHUP)

            def registered():
                r = sipp(d, "register", 222, keys={"expires": 3600, "final": 200},
                         extra=["-au", "222", "-ap", "new-sip-pass-1"])
                return r.returncode == 0
            wait_for(registered, timeout=10, interval=0.3)
            self.assertEqual(bindings(d), 1)
            # the old extension of that agent is gone
            r = sipp(d, "register", 202, keys={"expires": 3600, "final": 403},
                     extra=["-au", "202", "-ap", "demo-sip-202"])
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
            with open(d.stderr_path) as f:
                self.assertNotIn("new-sip-pass-1", f.read())
            d.stop()  # SIGTERM with voice up: exit code 0, sanitizer-clean


if __name__ == "__main__":
    unittest.main()
