"""What crosses a bridged call besides audio: the caller's RFC 4733 keys reach the agent's
phone as its own telephone-event payload type (the caller sends 96, the phone agreed 101),
for IVRs or voicemail beyond it; a phone that agreed no telephone-event gets none."""
import unittest

from sbtest import DEMO_ADMIN, Daemon, assert_sipp_ok as ok, free_port, pcma_audio, sipp, sipp_start

SIP = "[sip]\nlisten = 127.0.0.1:0\nno_media_seconds = 10\nring_timeout_seconds = 10\n"
CALLER = "79990005566"
AUDIO = pcma_audio("br")


class BridgeTest(unittest.TestCase):
    def run_call(self, scenario):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            st, _, agents = d.req("GET", "/api/v1/agents", token=token)
            anna = next(a["id"] for a in agents["agents"] if a["email"].startswith("anna@"))
            port = free_port()
            ok(self, sipp(d, "register", 202, keys={"expires": 3600, "final": 200}, local_port=port,
                          extra=["-au", "202", "-ap", "demo-sip-202"]))
            st, _, b = d.req("POST", f"/api/v1/agents/{anna}/presence", {"presence": "online"}, token=token)
            self.assertEqual(st, 200, b)
            phone = sipp_start(d, scenario, 202, local_port=port, extra=["-rtp_echo"], timeout=40,
                               keys={"caller": CALLER, "ring_ms": 300, "pt": 8, "codec": "8 PCMA"})
            try:
                r = sipp(d, "caller_talk_keys", 100, keys={"digit": "1", "caller": CALLER, "key_after_ms": 2500,
                                                           "keys": "42", "wait_ms": 2000, "audio": AUDIO}, timeout=60)
                pr = phone.wait()
            finally:
                phone.kill()
            ok(self, r, d)
            ok(self, pr, d)
            st, _, calls = d.req("GET", "/api/v1/calls", token=token)
            self.assertEqual(calls["calls"][0]["agent_id"], anna, calls["calls"][0])
            m = d.metrics()
            d.stop()
            return m

    def test_caller_keys_reach_the_agent_phone(self):
        m = self.run_call("agent_uas")
        # "4" and "2", each several RFC 4733 packets (start, updates, three end packets)
        self.assertGreaterEqual(m["switchboard_voice_dtmf_relayed_total"], 6)
        self.assertGreaterEqual(m["switchboard_voice_dtmf_digits_total"], 3)  # 1 in the IVR, then 4 and 2

    def test_no_telephone_event_at_the_phone_no_relay(self):
        m = self.run_call("agent_uas_no_te")
        self.assertEqual(m["switchboard_voice_dtmf_relayed_total"], 0)


if __name__ == "__main__":
    unittest.main()
