"""Forwarding schemes that ring outside: a number through the SIP trunk (a SIPp UAS as the
provider, which challenges our INVITE and checks the digest, the dialled number and the
caller ID) and a SIP address INVITEd directly (a SIPp phone that never registered). The
caller's audio reaches the far end and back; the call log says answered with no agent, and
a number that asks for the post-call rating does not ask after a leg outside (not our agent).
Without a [trunk] host a number is unreachable (the scheme rings nobody), so the scheme's
backup takes the call."""
import unittest

from sbtest import DEMO_ADMIN, Daemon, assert_sipp_ok as ok, calls_of, free_port, pcma_audio, sipp, sipp_start, wait_for

SIP = "[sip]\nlisten = 127.0.0.1:0\nno_media_seconds = 10\nring_timeout_seconds = 10\nqueue_max_wait_seconds = 40\n"
CALLER = "79990003344"
MOBILE = "+79161234567"
TRUNK_USER, TRUNK_PASSWORD = "sb-trunk", "trunk-Secr3t-pw"
AUDIO = pcma_audio("fw")


def scheme_number(test, d, token, steps, final, backup=None, number="556", rating=None):
    doc = {"name": "Дежурный", "steps": steps, "final": final}
    if backup:
        doc["backup"] = backup
    st, _, b = d.req("POST", "/api/v1/forwarding-schemes", doc, token=token)
    test.assertEqual(st, 201, b)
    num = {"name": "Дежурный", "number": number, "language": "ru",
           "entry": {"action": "scheme", "scheme_id": b["forwarding_scheme"]["id"]}}
    if rating is not None:
        num["rating"] = rating
    st, _, n = d.req("POST", "/api/v1/numbers", num, token=token)
    test.assertEqual(st, 201, n)


def last_call(d, token):
    return wait_for(lambda: (lambda c: c and c[0])(calls_of(d, token)), timeout=20, msg="call logged")


class ForwardOutsideTest(unittest.TestCase):
    def test_number_through_the_trunk(self):
        tp = free_port()
        trunk = (f"[trunk]\nhost = 127.0.0.1:{tp}\nusername = {TRUNK_USER}\npassword = {TRUNK_PASSWORD}\n"
                 "prefix_numbers = 8\n")
        with Daemon(config_extra=SIP + trunk) as d:
            token = d.token(DEMO_ADMIN[0])
            # the number asks for the rating, but the mobile is nobody of ours: not asked
            scheme_number(self, d, token, [{"targets": [{"number": MOBILE}], "mode": "together", "seconds": 10}],
                          final={"action": "hangup"}, rating=True)
            # the provider: sip:8<digits>@, From the caller's number, our digest; it answers,
            # sends audio for 3 s and hangs up
            provider = sipp_start(d, "trunk_uas", "trunk", local_port=tp, timeout=40, keys={
                "number": "8" + MOBILE[1:], "callerid": CALLER, "user": TRUNK_USER, "password": TRUNK_PASSWORD,
                "ring_ms": 500, "talk_ms": 3000, "audio": AUDIO})
            try:
                r = sipp(d, "caller_queue_bye", "556", keys={"digit": "5", "caller": CALLER, "wait_ms": 20000,
                                                             "audio": AUDIO}, timeout=60)
                pr = provider.wait()
            finally:
                provider.kill()
            ok(self, r, d)
            ok(self, pr, d)
            c = last_call(d, token)
            self.assertEqual((c["status"], c["agent_id"], c["hangup_by"]), ("answered", None, "agent"), c)
            # the caller left with the far end: no question, no talk ending before the call
            self.assertEqual((c["rating"], c["talk_ended_at"]), (None, None), c)
            m = d.metrics()
            self.assertEqual(m["switchboard_voice_legs_outside_total"], 1)
            self.assertGreater(m["switchboard_voice_rtp_relayed_to_caller_total"], 25)
            self.assertGreater(m["switchboard_voice_rtp_relayed_to_agent_total"], 25)
            self.assertNotIn(TRUNK_PASSWORD, d.log())
            d.stop()

    def test_sip_address_with_our_number_as_caller_id(self):
        pp = free_port()
        with Daemon(config_extra=SIP + "[trunk]\nforward_caller_id = number\n") as d:
            token = d.token(DEMO_ADMIN[0])
            scheme_number(self, d, token, [{"targets": [{"sip_uri": f"sip:duty@127.0.0.1:{pp}"}],
                                            "mode": "together", "seconds": 10}], final={"action": "hangup"})
            # a phone that never registered with us; it must see our number 556 as the caller
            duty = sipp_start(d, "agent_uas", "duty", local_port=pp, extra=["-rtp_echo"], timeout=40,
                              keys={"caller": "556", "ring_ms": 300, "pt": 8, "codec": "8 PCMA"})
            try:
                r = sipp(d, "caller_queue", "556", keys={"digit": "5", "caller": CALLER, "wait_ms": 4000,
                                                         "audio": AUDIO}, timeout=60)
                dr = duty.wait()
            finally:
                duty.kill()
            ok(self, r, d)
            ok(self, dr, d)  # it got the caller's BYE
            c = last_call(d, token)
            self.assertEqual((c["status"], c["agent_id"], c["hangup_by"]), ("answered", None, "caller"), c)
            self.assertGreater(d.metrics()["switchboard_voice_rtp_relayed_to_caller_total"], 25)  # its echo
            d.stop()

    def test_number_without_a_trunk_goes_to_the_backup(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            st, _, teams = d.req("GET", "/api/v1/teams", token=token)
            sales = next(t["id"] for t in teams["teams"] if t["name"] == "Sales")
            scheme_number(self, d, token, [{"targets": [{"number": MOBILE}], "mode": "together", "seconds": 10}],
                          final={"action": "hangup"}, backup={"action": "queue", "team_id": sales})
            ok(self, sipp(d, "caller_queue", "556", keys={"digit": "5", "caller": CALLER, "wait_ms": 3000,
                                                          "audio": AUDIO}, timeout=60), d)
            c = last_call(d, token)
            # our side could not deliver: the backup (Sales' queue) took the caller, who hung up waiting
            self.assertEqual((c["status"], c["queue_team_id"]), ("abandoned", sales), c)
            self.assertEqual(d.metrics()["switchboard_voice_legs_outside_total"], 0)
            self.assertEqual(d.metrics()["switchboard_voice_legs_invited_total"], 0)  # nobody was rung
            d.stop()


if __name__ == "__main__":
    unittest.main()
