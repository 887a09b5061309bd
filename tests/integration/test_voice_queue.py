"""Queues and agents' phones against SIPp (sip-tester) on loopback: Anna (extension 202,
team Sales in the demo) registers a SIPp phone; a caller dials DID 100 and presses 1
(the Sales queue, ring_all) -> her phone rings with the caller's number in From, answers,
and RTP is relayed both ways (her phone echoes it: -rtp_echo); the caller's BYE reaches
her phone. Also: nobody registered -> the caller waits on hold and is hung up at
queue_max_wait (missed); a busy phone (486) is rung again and answers (PCMU against the
caller's PCMA: converted); the agent hangs up first -> the caller gets BYE; a CANCEL
from a caller whose call still rings cancels the agent's phone too; a phone nobody picks
up is cancelled at ring_timeout; a SIGTERM cancels a ringing phone."""
import os
import tempfile
import unittest

from sbtest import DEMO_ADMIN, Daemon, assert_sipp_ok as ok, free_port, sipp, sipp_start, wait_for

SIP = "[sip]\nlisten = 127.0.0.1:0\nno_media_seconds = 10\nring_timeout_seconds = 10\nqueue_max_wait_seconds = 40\n"
CALLER = "79991234567"


AUDIO = os.path.join(tempfile.gettempdir(), f"sb-alaw-{os.getpid()}.raw")


def setUpModule():
    with open(AUDIO, "wb") as f:  # raw PCMA for SIPp's rtp_stream: any bytes are audio
        f.write(bytes(range(256)) * 64)


def tearDownModule():
    os.unlink(AUDIO)



def last_call(d, token, n=1):
    def get():
        st, _, body = d.req("GET", "/api/v1/calls", token=token)
        assert st == 200, body
        return len(body["calls"]) >= n and body["calls"][0]
    return wait_for(get, timeout=15, msg="call logged")


def ids(d, token):
    st, _, teams = d.req("GET", "/api/v1/teams", token=token)
    assert st == 200, teams
    st, _, agents = d.req("GET", "/api/v1/agents", token=token)
    assert st == 200, agents
    return ({t["name"]: t["id"] for t in teams["teams"]},
            {a["email"].split("@")[0]: a["id"] for a in agents["agents"]})


def hang_up_at_max_wait(test, d, token, team_id):
    """The queue's fallback at max wait is the team's voicemail; these tests want the goodbye."""
    st, _, b = d.req("PATCH", f"/api/v1/teams/{team_id}",
                     {"routing": {"call_queue": {"max_wait_fallback": "hangup"}}}, token=token)
    test.assertEqual(st, 200, b)


def register(test, d, ext, port, online=True):
    """Registers a SIPp phone for the demo extension and, as the agent does in the workspace,
    sets its agent online: queues ring only agents who are online with a registered phone."""
    r = sipp(d, "register", ext, keys={"expires": 3600, "final": 200}, local_port=port,
             extra=["-au", str(ext), "-ap", f"demo-sip-{ext}"])
    ok(test, r)
    if online:
        admin = d.token(DEMO_ADMIN[0])
        st, _, agents = d.req("GET", "/api/v1/agents", token=admin)
        test.assertEqual(st, 200, agents)
        email = {201: "admin", 202: "anna", 203: "boris"}[ext] + "@demo.switchboard"
        agent = next(a for a in agents["agents"] if a["email"] == email)
        st, _, b = d.req("POST", f"/api/v1/agents/{agent['id']}/presence", {"presence": "online"}, token=admin)
        test.assertEqual(st, 200, b)


def phone(d, scenario, ext, port, **keys):
    k = {"caller": CALLER, "ring_ms": 1000, "pt": 8, "codec": "8 PCMA"}
    k.update(keys)
    return sipp_start(d, scenario, ext, keys=k, local_port=port, extra=["-rtp_echo"], timeout=40)


class VoiceQueueTest(unittest.TestCase):
    def test_agent_answers_relay_caller_hangs_up(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            team, agent = ids(d, token)
            lp = free_port()
            register(self, d, 202, lp)
            anna = phone(d, "agent_uas", 202, lp)
            ok(self, sipp(d, "caller_queue", 100, keys={"digit": "1", "caller": CALLER, "wait_ms": 6000, "audio": AUDIO}))
            ok(self, anna.wait())  # rang with the caller's number, answered, got the BYE
            c = last_call(d, token)
            self.assertEqual((c["status"], c["hangup_by"], c["hangup_cause"]), ("answered", "caller", "normal"))
            self.assertEqual((c["queue_team_id"], c["agent_id"], c["ivr_path"]), (team["Sales"], agent["anna"], "1"))
            self.assertTrue(c["offered_at"] < c["answered_at"] <= c["ended_at"], c)
            m = d.metrics()
            self.assertEqual(m["switchboard_voice_legs_answered_total"], 1)
            # the caller's audio reached Anna's phone and its echo came back
            self.assertGreater(m["switchboard_voice_rtp_relayed_to_agent_total"], 50)
            self.assertGreater(m["switchboard_voice_rtp_relayed_to_caller_total"], 50)
            self.assertEqual(m["switchboard_voice_rtp_transcoded_total"], 0)  # PCMA both sides
            self.assertEqual(m["switchboard_voice_calls_active"], 0)
            d.stop()

    def test_nobody_registered_is_missed_at_max_wait(self):
        extra = SIP.replace("queue_max_wait_seconds = 40", "queue_max_wait_seconds = 3")
        with Daemon(config_extra=extra) as d:
            token = d.token(DEMO_ADMIN[0])
            team, _ = ids(d, token)
            hang_up_at_max_wait(self, d, token, team["Sales"])
            # the caller waits on hold; after 3 s we hang up
            ok(self, sipp(d, "caller_queue_bye", 100, keys={"digit": "1", "wait_ms": 15000, "audio": AUDIO}))
            c = last_call(d, token)
            self.assertEqual((c["status"], c["hangup_by"]), ("missed", "system"))
            self.assertEqual((c["queue_team_id"], c["agent_id"]), (team["Sales"], None))
            self.assertEqual(c["hangup_cause"], "normal")
            self.assertEqual(d.metrics()["switchboard_voice_legs_invited_total"], 0)
            d.stop()

    def test_busy_agent_rung_again_and_agent_hangs_up(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            team, agent = ids(d, token)
            lp = free_port()
            register(self, d, 202, lp)
            busy = phone(d, "agent_busy", 202, lp)
            caller = sipp_start(d, "caller_queue_bye", 100, keys={"digit": "1", "caller": CALLER, "wait_ms": 30000, "audio": AUDIO})
            ok(self, busy.wait())
            # the same phone, free now, answers PCMU to the caller's PCMA and hangs up first
            anna = phone(d, "agent_bye", 202, lp, pt=0, codec="0 PCMU", talk_ms=3000)
            ok(self, anna.wait())
            ok(self, caller.wait())  # the caller got our BYE
            c = last_call(d, token)
            self.assertEqual((c["status"], c["hangup_by"], c["agent_id"]), ("answered", "agent", agent["anna"]))
            self.assertEqual(c["queue_team_id"], team["Sales"])
            m = d.metrics()
            self.assertGreaterEqual(m["switchboard_voice_legs_invited_total"], 2)
            self.assertGreater(m["switchboard_voice_rtp_transcoded_total"], 20)
            self.assertGreater(m["switchboard_voice_rtp_relayed_to_caller_total"], 20)
            self.assertEqual(m["switchboard_voice_calls_active"], 0)
            d.stop()

    def test_caller_cancel_cancels_the_agent(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            team, _ = ids(d, token)
            # a number that goes straight to a ringback queue: the call rings (unanswered) meanwhile
            st, _, b = d.req("PATCH", f"/api/v1/teams/{team['Sales']}",
                             {"routing": {"call_queue": {"ringback": True}}}, token=token)
            self.assertEqual(st, 200, b)
            st, _, num = d.req("POST", "/api/v1/numbers", {
                "name": "Sales direct", "number": "102", "language": "en",
                "entry": {"action": "queue", "team_id": team["Sales"]}}, token=token)
            self.assertEqual(st, 201, num)
            lp = free_port()
            register(self, d, 202, lp)
            anna = phone(d, "agent_cancelled", 202, lp)
            ok(self, sipp(d, "caller_cancel_wait", 102, keys={"wait_ms": 2000}))
            ok(self, anna.wait())  # 180, then our CANCEL
            c = last_call(d, token)
            self.assertEqual((c["status"], c["hangup_by"], c["hangup_cause"]), ("missed", "caller", "cancelled"))
            self.assertEqual((c["queue_team_id"], c["agent_id"]), (team["Sales"], None))
            d.stop()

    def test_ring_timeout_cancels_and_caller_is_missed(self):
        extra = SIP.replace("ring_timeout_seconds = 10", "ring_timeout_seconds = 2").replace(
            "queue_max_wait_seconds = 40", "queue_max_wait_seconds = 8")
        with Daemon(config_extra=extra) as d:
            token = d.token(DEMO_ADMIN[0])
            team, _ = ids(d, token)
            hang_up_at_max_wait(self, d, token, team["Sales"])
            lp = free_port()
            register(self, d, 202, lp)
            anna = phone(d, "agent_cancelled", 202, lp)  # rings, never answers
            caller = sipp_start(d, "caller_queue_bye", 100, keys={"digit": "1", "wait_ms": 30000, "audio": AUDIO})
            ok(self, anna.wait())  # CANCEL after ring_timeout_seconds
            ok(self, caller.wait())  # our BYE at queue_max_wait
            c = last_call(d, token)
            self.assertEqual((c["status"], c["hangup_by"], c["agent_id"]), ("missed", "system", None))
            self.assertGreaterEqual(d.metrics()["switchboard_voice_legs_invited_total"], 1)
            d.stop()

    def test_shutdown_cancels_a_ringing_leg(self):
        with Daemon(config_extra=SIP) as d:
            lp = free_port()
            register(self, d, 202, lp)
            anna = phone(d, "agent_cancelled", 202, lp)
            caller = sipp_start(d, "caller_queue_bye", 100, keys={"digit": "1", "wait_ms": 30000, "audio": AUDIO})
            wait_for(lambda: d.metrics()["switchboard_voice_legs_invited_total"] == 1, msg="agent rung")
            d.stop()  # SIGTERM: the ringing phone gets CANCEL, the caller BYE
            ok(self, anna.wait())
            ok(self, caller.wait())


if __name__ == "__main__":
    unittest.main()
