"""Voice against a real SIP user agent: baresip (Debian's baresip-core 1.0.0), driven over
its ctrl_tcp module by tests/integration/baresip.py, with no sound card (a sine tone as
the microphone, no player), G.711 only, on loopback.

- baresip as Anna's phone (extension 202): it registers with digest auth, a SIPp caller
  dials DID 100 and presses 1 (Sales), baresip reports the incoming call with the caller's
  number, the test answers it over ctrl_tcp ("accept"), RTP flows both ways through the
  daemon (the daemon's counters, and baresip's own RTP counters from "audio_debug"), the
  caller hangs up and baresip reports the call closed; the call log says Anna answered.
- baresip as the customer: it dials sip:100@..., the IVR answers, it presses 2 with
  menu's "sndcode" (RFC 4733 telephone-events in baresip 1.0.0), waits in the Support
  queue (nobody online) and hangs up: the call log row says ivr_path "2", the Support
  queue, abandoned by the caller.
- a wrong SIP password from baresip: REGISTER refused (403), baresip reports
  REGISTER_FAIL, no binding, switchboard_voice_register_failures_total counts it.
- baresip as Anna's phone placing a call ([sip] auth_invites): our 407 is answered with the
  account's password, the IVR answers and plays to it; the call log says 202 called (no
  customer ticket). With a wrong password its INVITE is refused (403), counted, not a call.

Skipped when baresip or its modules (ctrl_tcp, menu, g711, ausine) are not installed
(`make deps` installs baresip-core)."""
import os
import tempfile
import time
import unittest

from baresip import Baresip, available
from sbtest import DEMO_ADMIN, Daemon, sipp_start, wait_for

SIP = "[sip]\nlisten = 127.0.0.1:0\nno_media_seconds = 10\nring_timeout_seconds = 15\nqueue_max_wait_seconds = 40\n"
CALLER = "79995550101"
CUSTOMER = "79995550202"
AUDIO = os.path.join(tempfile.gettempdir(), f"sb-alaw-bs-{os.getpid()}.raw")


def setUpModule():
    if not available():
        raise unittest.SkipTest("baresip (baresip-core with ctrl_tcp, menu, g711, ausine) is not installed")
    with open(AUDIO, "wb") as f:  # raw PCMA for SIPp's rtp_stream: any bytes are audio
        f.write(bytes(range(256)) * 64)


def tearDownModule():
    if os.path.exists(AUDIO):
        os.unlink(AUDIO)


def ids(test, d, token):
    st, _, teams = d.req("GET", "/api/v1/teams", token=token)
    test.assertEqual(st, 200, teams)
    st, _, agents = d.req("GET", "/api/v1/agents", token=token)
    test.assertEqual(st, 200, agents)
    return ({t["name"]: t["id"] for t in teams["teams"]},
            {a["email"].split("@")[0]: a["id"] for a in agents["agents"]})


def last_call(d, token):
    def get():
        st, _, body = d.req("GET", "/api/v1/calls", token=token)
        assert st == 200, body
        return body["calls"] and body["calls"][0]
    return wait_for(get, timeout=15, msg="call logged")


def account(ext, sip_port, password, regint=600):
    return f"<sip:{ext}@127.0.0.1:{sip_port};transport=udp>;auth_pass={password};regint={regint}"


class VoiceBaresipTest(unittest.TestCase):
    def test_baresip_agent_phone_answers_queue_call(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            team, agent = ids(self, d, token)
            with Baresip(account(202, d.sip_port, "demo-sip-202"), name="anna") as anna:
                reg = anna.wait_event("REGISTER_OK")
                self.assertEqual(reg["accountaor"], f"sip:202@127.0.0.1:{d.sip_port}")
                self.assertEqual(d.metrics()["switchboard_voice_registrations"], 1)
                st, _, b = d.req("POST", f"/api/v1/agents/{agent['anna']}/presence", {"presence": "online"},
                                 token=token)
                self.assertEqual(st, 200, b)

                caller = sipp_start(d, "caller_queue", 100,
                                    keys={"digit": "1", "caller": CALLER, "wait_ms": 9000, "audio": AUDIO})
                try:
                    inc = anna.wait_event("CALL_INCOMING", timeout=15)
                    self.assertEqual(inc["direction"], "incoming")
                    self.assertIn(CALLER, inc["peeruri"])  # the caller's number in From
                    self.assertEqual(inc["accountaor"], f"sip:202@127.0.0.1:{d.sip_port}")
                    anna.accept()
                    est = anna.wait_event("CALL_ESTABLISHED")
                    self.assertEqual(est["id"], inc["id"])
                    # audio both ways while they talk: SIPp's stream to the phone, the tone back
                    wait_for(lambda: d.metrics().get("switchboard_voice_rtp_relayed_to_agent_total", 0) > 50
                             and d.metrics().get("switchboard_voice_rtp_relayed_to_caller_total", 0) > 50,
                             timeout=6, msg="RTP relayed both ways")
                    # and the phone itself got the caller's audio (RTCP's count of packets received)
                    stats = wait_for(lambda: (lambda s: s if s["rx"] > 50 and s["tx"] > 50 else None)(
                        anna.rtp_stats()), timeout=6, msg="baresip to send and receive RTP")
                    self.assertGreater(stats["rx"], 50, stats)
                    r = caller.wait(timeout=30)
                finally:
                    caller.kill()
                self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
                closed = anna.wait_event("CALL_CLOSED")  # the caller's BYE reached the phone
                self.assertEqual(closed["id"], inc["id"])
                self.assertEqual(anna.types().count("CALL_CLOSED"), 1)

            c = last_call(d, token)
            self.assertEqual((c["status"], c["hangup_by"], c["hangup_cause"]), ("answered", "caller", "normal"))
            self.assertEqual((c["queue_team_id"], c["agent_id"], c["ivr_path"]), (team["Sales"], agent["anna"], "1"))
            self.assertTrue(c["offered_at"] < c["answered_at"] <= c["ended_at"], c)
            m = d.metrics()
            self.assertEqual(m["switchboard_voice_legs_answered_total"], 1)
            self.assertGreater(m["switchboard_voice_rtp_relayed_to_agent_total"], 50)
            self.assertGreater(m["switchboard_voice_rtp_relayed_to_caller_total"], 50)
            self.assertEqual(m["switchboard_voice_calls_active"], 0)
            d.stop()

    def test_baresip_customer_presses_2_and_hangs_up_in_queue(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            team, _ = ids(self, d, token)
            # nobody is online: the customer waits in the Support queue until they hang up
            with Baresip(f"<sip:{CUSTOMER}@127.0.0.1;transport=udp>;regint=0", name="customer") as cust:
                cust.dial(f"sip:100@127.0.0.1:{d.sip_port}")
                est = cust.wait_event("CALL_ESTABLISHED", timeout=10)  # the IVR answers
                self.assertEqual(est["direction"], "outgoing")
                self.assertIn(f"sip:100@127.0.0.1:{d.sip_port}", est["peeruri"])
                time.sleep(1.0)  # the menu's prompt has started
                cust.send_dtmf("2")
                time.sleep(4.0)
                self.assertNotIn("CALL_CLOSED", cust.types())  # still waiting, not hung up on
                stats = cust.rtp_stats()  # the menu's prompt, then the queue's hold audio
                self.assertGreater(stats["rx"], 50, stats)
                self.assertGreater(stats["tx"], 100, stats)
                cust.hangup()
                cust.wait_event("CALL_CLOSED")
            c = last_call(d, token)
            self.assertEqual(c["ivr_path"], "2", c)
            self.assertEqual((c["queue_team_id"], c["agent_id"]), (team["Support"], None))
            self.assertEqual((c["status"], c["hangup_by"]), ("abandoned", "caller"), c)
            self.assertIn(CUSTOMER, c["from"])
            m = d.metrics()
            self.assertEqual(m["switchboard_voice_dtmf_digits_total"], 1)  # baresip's one telephone-event
            self.assertEqual(m["switchboard_voice_calls_active"], 0)
            self.assertEqual(m.get("switchboard_voice_legs_invited_total", 0), 0)
            d.stop()

    def test_baresip_agent_phone_places_a_call_with_its_digest(self):
        # loopback is not the trunk: only an extension's digest lets these calls in
        with Daemon(config_extra=SIP + "[trunk]\nallow = 10.0.0.0/8\n") as d:
            token = d.token(DEMO_ADMIN[0])
            with Baresip(account(202, d.sip_port, "demo-sip-202"), name="anna") as anna:
                anna.wait_event("REGISTER_OK")
                anna.dial(f"sip:100@127.0.0.1:{d.sip_port}")
                est = anna.wait_event("CALL_ESTABLISHED", timeout=10)  # through our 407
                self.assertEqual(est["direction"], "outgoing")
                wait_for(lambda: anna.rtp_stats()["rx"] > 50, timeout=6, msg="the menu's prompt reaches the phone")
                anna.hangup()
                anna.wait_event("CALL_CLOSED")
            c = last_call(d, token)
            self.assertEqual((c["from"], c["did"], c["status"], c["ticket_id"]), ("202", "100", "abandoned", None), c)
            self.assertEqual(d.metrics()["switchboard_voice_invites_refused_total"], 0)
            # a wrong password: the phone's answer to our 407 is refused
            with Baresip(account(202, d.sip_port, "not-the-password", regint=0), name="anna2") as anna:
                anna.dial(f"sip:100@127.0.0.1:{d.sip_port}")
                closed = anna.wait_event("CALL_CLOSED", timeout=10)
                self.assertIn("403", closed.get("param", ""), closed)
                self.assertNotIn("CALL_ESTABLISHED", anna.types())
            self.assertEqual(d.metrics()["switchboard_voice_invites_refused_total"], 1)
            self.assertEqual(len(d.req("GET", "/api/v1/calls", token=token)[2]["calls"]), 1)
            with open(d.stderr_path) as f:
                log = f.read()
            self.assertNotIn("not-the-password", log)
            self.assertNotIn("demo-sip-202", log)
            d.stop()

    def test_baresip_wrong_password_is_refused(self):
        with Daemon(config_extra=SIP) as d:
            with Baresip(account(203, d.sip_port, "not-the-password"), name="boris") as boris:
                fail = boris.wait_event("REGISTER_FAIL")
                self.assertIn("403", fail.get("param", ""), fail)
                self.assertNotIn("REGISTER_OK", boris.types())
            m = d.metrics()
            self.assertGreaterEqual(m["switchboard_voice_register_failures_total"], 1)
            self.assertEqual(m["switchboard_voice_registrations"], 0)
            # the right password from baresip still registers (one failure is no lockout)
            with Baresip(account(203, d.sip_port, "demo-sip-203"), name="boris2") as boris:
                boris.wait_event("REGISTER_OK")
            self.assertEqual(d.metrics()["switchboard_voice_registrations"], 1)
            with open(d.stderr_path) as f:
                self.assertNotIn("not-the-password", f.read())
            d.stop()


if __name__ == "__main__":
    unittest.main()
