"""Offer/answer after the first: late-offer INVITEs (no SDP: our offer goes in the
200, the answer comes in the ACK) and re-INVITEs (hold with a=inactive or sendonly,
resume, a re-INVITE without SDP), from SIPp callers; and a real phone (baresip as
Anna's) putting a queue call on hold and resuming it while the caller keeps talking."""
import time
import unittest

from baresip import Baresip, available
from sbtest import DEMO_ADMIN, Daemon, assert_sipp_ok as ok, calls_of, pcma_audio, sipp, sipp_start, wait_for

SIP = "[sip]\nlisten = 127.0.0.1:0\nno_media_seconds = 3\n"
AUDIO = pcma_audio("ri")


def last_call(d):
    return wait_for(lambda: (lambda c: c and c[0])(calls_of(d)), timeout=15, msg="call logged")


def teams(d):
    st, _, body = d.req("GET", "/api/v1/teams", token=d.token(DEMO_ADMIN[0]))
    assert st == 200, body
    return {t["name"]: t["id"] for t in body["teams"]}


class ReinviteTest(unittest.TestCase):
    def test_late_offer(self):
        with Daemon(config_extra=SIP) as d:
            ok(self, sipp(d, "caller_late_offer", 100, keys={"caller": "79997770001"}))
            c = last_call(d)
            # the answer in the ACK gave the address and telephone-event 101: '1' reached the IVR
            self.assertEqual((c["status"], c["hangup_by"], c["ivr_path"]), ("abandoned", "caller", "1"))
            self.assertEqual(c["queue_team_id"], teams(d)["Sales"])
            m = d.metrics()
            self.assertGreater(m["switchboard_voice_rtp_packets_sent_total"], 20)  # the prompt went to it
            self.assertGreaterEqual(m["switchboard_voice_dtmf_digits_total"], 1)
            d.stop()

    def test_hold_resume_and_reinvite_without_sdp(self):
        with Daemon(config_extra=SIP) as d:
            caller = sipp_start(d, "caller_hold", 100, keys={"caller": "79997770002", "hold_ms": 4500})
            try:
                # on hold (a=inactive): we send nothing to it ...
                wait_for(lambda: d.metrics().get("switchboard_voice_reinvites_total", 0) == 1, timeout=15,
                         msg="the hold re-INVITE")
                time.sleep(0.2)
                sent = d.metrics()["switchboard_voice_rtp_packets_sent_total"]
                time.sleep(1.0)
                self.assertEqual(d.metrics()["switchboard_voice_rtp_packets_sent_total"], sent)
                # ... and after no_media_seconds of silence it is still there
                r = caller.wait(timeout=40)
            finally:
                caller.kill()
            ok(self, r)
            c = last_call(d)
            self.assertEqual((c["status"], c["hangup_by"], c["hangup_cause"]), ("abandoned", "caller", "normal"))
            m = d.metrics()
            self.assertEqual(m["switchboard_voice_reinvites_total"], 3)
            self.assertEqual(m["switchboard_voice_no_media_hangups_total"], 0)
            self.assertGreater(m["switchboard_voice_rtp_packets_sent_total"], sent)  # the hold music again
            d.stop()

    def test_reinvite_without_usable_codec_is_refused_and_call_goes_on(self):
        with Daemon(config_extra=SIP) as d:
            ok(self, sipp(d, "caller_reinvite_488", 100, keys={"caller": "79997770003"}))
            c = last_call(d)
            self.assertEqual((c["status"], c["hangup_by"]), ("abandoned", "caller"))
            d.stop()

    def test_agent_phone_holds_and_resumes(self):
        if not available():
            self.skipTest("baresip (baresip-core with ctrl_tcp, menu, g711, ausine) is not installed")
        with Daemon(config_extra=SIP.replace("no_media_seconds = 3", "no_media_seconds = 5")) as d:
            token = d.token(DEMO_ADMIN[0])
            st, _, agents = d.req("GET", "/api/v1/agents", token=token)
            anna_id = next(a["id"] for a in agents["agents"] if a["email"].startswith("anna@"))
            account = f"<sip:202@127.0.0.1:{d.sip_port};transport=udp>;auth_pass=demo-sip-202;regint=600"
            with Baresip(account, name="anna") as anna:
                anna.wait_event("REGISTER_OK")
                st, _, b = d.req("POST", f"/api/v1/agents/{anna_id}/presence", {"presence": "online"}, token=token)
                self.assertEqual(st, 200, b)
                caller = sipp_start(d, "caller_queue", 100,
                                    keys={"digit": "1", "caller": "79997770004", "wait_ms": 14000, "audio": AUDIO})
                try:
                    anna.wait_event("CALL_INCOMING", timeout=15)
                    anna.accept()
                    anna.wait_event("CALL_ESTABLISHED")
                    wait_for(lambda: d.metrics().get("switchboard_voice_rtp_relayed_to_agent_total", 0) > 50,
                             timeout=6, msg="RTP to the phone")
                    anna.command("hold")
                    wait_for(lambda: d.metrics().get("switchboard_voice_reinvites_total", 0) == 1, timeout=6,
                             msg="the phone's hold re-INVITE answered")
                    time.sleep(0.3)
                    to_agent = d.metrics()["switchboard_voice_rtp_relayed_to_agent_total"]
                    time.sleep(1.0)
                    # held (sendonly from the phone): the caller's audio no longer goes to it
                    self.assertEqual(d.metrics()["switchboard_voice_rtp_relayed_to_agent_total"], to_agent)
                    anna.command("resume")
                    wait_for(lambda: d.metrics().get("switchboard_voice_reinvites_total", 0) == 2, timeout=6,
                             msg="the resume re-INVITE answered")
                    wait_for(lambda: d.metrics()["switchboard_voice_rtp_relayed_to_agent_total"] > to_agent + 25,
                             timeout=6, msg="RTP to the phone again")
                    r = caller.wait(timeout=40)
                finally:
                    caller.kill()
                ok(self, r)
            c = last_call(d)
            self.assertEqual((c["status"], c["hangup_by"], c["agent_id"]), ("answered", "caller", anna_id))
            self.assertEqual(d.metrics()["switchboard_voice_no_media_hangups_total"], 0)
            d.stop()


if __name__ == "__main__":
    unittest.main()
