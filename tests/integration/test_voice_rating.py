"""The post-call rating against SIPp on loopback (a queue's "rating": true, or the number's): Anna
(extension 202, team Sales in the demo) answers a caller of the Sales queue on a SIPp phone and
hangs up first; the caller, still on the line, hears "please rate the call from 1 to 5" and
presses a key.

- 4 (RFC 4733) -> "thank you", our BYE; the call log row has rating 4, hangup_by agent, the talk
  ending at the agent's hang-up (talk_ended_at), and the queue figures count it (rating_count 1,
  rating_average 4);
- the caller hangs up first -> no question, rating null;
- 9, the question again, then no key -> our BYE ~6 s after it, rating null;
- rating off (the default) -> the caller gets BYE as soon as the agent hangs up;
- the number's "rating": true -> a call the demo menu's key 3 sends straight to Anna (no queue)
  is rated, and so is a call to the Sales queue whose own setting is off (either asks);
- the number's rating off and no queue's -> that direct call is not.

That the caller hears the question is read from /metrics: audio packets we sent that were not
relayed from the agent, counted from the moment the agent's phone got our 200 to its BYE."""
import time
import unittest

from sbtest import DEMO_ADMIN, Daemon, assert_sipp_ok as ok, free_port, pcma_audio, sipp, sipp_start, wait_for

SIP = "[sip]\nlisten = 127.0.0.1:0\nno_media_seconds = 10\nring_timeout_seconds = 10\nqueue_max_wait_seconds = 40\n"
CALLER = "79991230044"
AUDIO = pcma_audio("rating")



def last_call(d, token):
    def get():
        st, _, body = d.req("GET", "/api/v1/calls", token=token)
        assert st == 200, body
        return body["calls"] and body["calls"][0]
    return wait_for(get, timeout=15, msg="call logged")


def sales(test, d, token, call_queue):
    st, _, teams = d.req("GET", "/api/v1/teams", token=token)
    test.assertEqual(st, 200, teams)
    team_id = next(t["id"] for t in teams["teams"] if t["name"] == "Sales")
    if call_queue is not None:
        st, _, b = d.req("PATCH", f"/api/v1/teams/{team_id}", {"routing": {"call_queue": call_queue}}, token=token)
        test.assertEqual(st, 200, b)
    return team_id


def register_anna(test, d):
    """Anna's SIPp phone registers for 202 and, as she does in the workspace, she goes online."""
    port = free_port()
    ok(test, sipp(d, "register", 202, keys={"expires": 3600, "final": 200}, local_port=port,
                  extra=["-au", "202", "-ap", "demo-sip-202"]))
    admin = d.token(DEMO_ADMIN[0])
    st, _, agents = d.req("GET", "/api/v1/agents", token=admin)
    test.assertEqual(st, 200, agents)
    anna = next(a for a in agents["agents"] if a["email"] == "anna@demo.switchboard")
    st, _, b = d.req("POST", f"/api/v1/agents/{anna['id']}/presence", {"presence": "online"}, token=admin)
    test.assertEqual(st, 200, b)
    return port, anna["id"]


def direct_key(test, d, token, anna_id):
    """The demo menu's key 3 rings Anna directly (an IVR "agent" option, no queue)."""
    st, _, b = d.req("GET", "/api/v1/ivr-menus/1", token=token)
    test.assertEqual(st, 200, b)
    menu = b["ivr_menu"]
    menu["options"].append({"digit": "3", "action": "agent", "agent_id": anna_id})
    st, _, b = d.req("PUT", "/api/v1/ivr-menus/1", menu, token=token)
    test.assertEqual(st, 200, b)


def number_rating(test, d, token, value):
    """The demo number 100's "rating" (None: left out)."""
    st, _, b = d.req("GET", "/api/v1/numbers/1", token=token)
    test.assertEqual(st, 200, b)
    number = b["number"]
    number.pop("rating", None)
    if value is not None:
        number["rating"] = value
    return d.req("PUT", "/api/v1/numbers/1", number, token=token)


def phone(d, scenario, port, calls=1, **keys):
    k = {"caller": CALLER, "ring_ms": 500, "pt": 8, "codec": "8 PCMA", "talk_ms": 2000}
    k.update(keys)
    return sipp_start(d, scenario, 202, keys=k, calls=calls, local_port=port, extra=["-rtp_echo"],
                      timeout=40 * calls)


def prompt_packets(d):
    """Audio we sent that was not relayed: prompts (the IVR's, the hold music, the rating)."""
    m = d.metrics()
    return m["switchboard_voice_rtp_packets_sent_total"] - m["switchboard_voice_rtp_relayed_to_caller_total"] \
        - m["switchboard_voice_rtp_relayed_to_agent_total"]


def agent_hangs_up_unasked(t, d, token, port, digit):
    """A call through IVR key `digit` that Anna's phone (on `port`) answers and hangs up:
    the caller gets our BYE with hers and hears no question. Returns the call."""
    anna = phone(d, "agent_bye", port)
    caller = sipp_start(d, "caller_queue_bye", 100, keys={"digit": digit, "caller": CALLER,
                                                          "wait_ms": 30000, "audio": AUDIO})
    ok(t, anna.wait())
    before = prompt_packets(d)
    ok(t, caller.wait())  # our BYE came with the agent's
    t.assertLess(prompt_packets(d) - before, 25)  # no question
    c = last_call(d, token)
    t.assertEqual((c["status"], c["hangup_by"], c["rating"]), ("answered", "agent", None), c)
    t.assertIsNone(c["talk_ended_at"], c)  # the caller did not stay after the agent
    return c


class VoiceRatingTest(unittest.TestCase):
    def test_rated_4_and_queue_figures(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            team_id = sales(self, d, token, {"rating": True})
            port, anna_id = register_anna(self, d)
            anna = phone(d, "agent_bye", port)
            # 1 for Sales at 1 s; Anna answers ~0.5 s later, talks 2 s and hangs up; the caller
            # presses 4 five seconds after that, while or just after the question plays
            caller = sipp_start(d, "caller_rate", 100, keys={
                "digit": "1", "caller": CALLER, "audio": AUDIO, "key_after_ms": 7500, "keys": "4",
                "wait_ms": 15000})
            ok(self, anna.wait())  # her BYE got its 200: she is gone, the caller is not
            before = prompt_packets(d)
            self.assertIsNone(caller.proc.poll(), "the caller was hung up with the agent")
            ok(self, caller.wait())  # "thank you", then our BYE
            heard = prompt_packets(d) - before
            self.assertGreater(heard, 100, "the caller heard no question after the agent hung up")
            c = last_call(d, token)
            self.assertEqual((c["status"], c["hangup_by"], c["rating"]), ("answered", "agent", 4), c)
            self.assertEqual((c["queue_team_id"], c["agent_id"]), (team_id, anna_id))
            # the talk ended when Anna hung up; the call, after the question and the thanks
            self.assertTrue(c["answered_at"] < c["talk_ended_at"] < c["ended_at"], c)
            # the recording ([sip] record_calls) ended with the talk, not with the rating
            self.assertIsNotNone(c["recording_url"], c)
            self.assertLess(c["recording_ms"], 4000, c)
            st, _, one = d.req("GET", f"/api/v1/calls/{c['id']}", token=token)
            self.assertEqual((st, one["call"]["rating"]), (200, 4), one)
            st, _, q = d.req("GET", "/api/v1/calls/queues", token=token)
            self.assertEqual(st, 200, q)
            row = next(x for x in q["queues"] if x["team_id"] == team_id)
            self.assertEqual((row["rating_count"], row["rating_average"]), (1, 4.0), row)
            self.assertEqual(d.metrics()["switchboard_voice_calls_active"], 0)
            d.stop()

    def test_caller_hangs_up_first_no_rating(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            team_id = sales(self, d, token, {"rating": True})
            port, _ = register_anna(self, d)
            anna = phone(d, "agent_uas", port)  # answers and waits for the BYE
            ok(self, sipp(d, "caller_queue", 100, keys={"digit": "1", "caller": CALLER, "wait_ms": 4000,
                                                        "audio": AUDIO}))
            ok(self, anna.wait())
            c = last_call(d, token)
            self.assertEqual((c["status"], c["hangup_by"], c["rating"]), ("answered", "caller", None), c)
            self.assertIsNone(c["talk_ended_at"], c)
            st, _, q = d.req("GET", "/api/v1/calls/queues", token=token)
            row = next(x for x in q["queues"] if x["team_id"] == team_id)
            self.assertEqual((row["rating_count"], row["rating_average"]), (0, None), row)
            d.stop()

    def test_invalid_key_asks_again_then_no_key_hangs_up(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            sales(self, d, token, {"rating": True, "strategy": "ring_all"})
            port, _ = register_anna(self, d)
            anna = phone(d, "agent_bye", port)
            caller = sipp_start(d, "caller_rate", 100, keys={
                "digit": "1", "caller": CALLER, "audio": AUDIO, "key_after_ms": 6500, "keys": "9",
                "wait_ms": 30000})
            ok(self, anna.wait())
            left = time.monotonic()
            ok(self, caller.wait())
            # the question, 9, the question again (a few seconds each), then 6 s without a key
            self.assertGreater(time.monotonic() - left, 10)
            c = last_call(d, token)
            self.assertEqual((c["status"], c["hangup_by"], c["rating"]), ("answered", "agent", None), c)
            d.stop()

    def test_rating_off_caller_hung_up_with_the_agent(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            sales(self, d, token, None)  # the demo's Sales queue: no "rating"
            port, _ = register_anna(self, d)
            agent_hangs_up_unasked(self, d, token, port, "1")
            d.stop()

    def test_number_rating_direct_agent_and_queue(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            team_id = sales(self, d, token, None)  # the Sales queue does not ask
            st, _, b = number_rating(self, d, token, "yes")
            self.assertEqual((st, b["error"]["code"]), (422, "validation_failed"), b)
            self.assertIn("field 'rating': must be true or false", b["error"]["message"], b)
            st, _, b = number_rating(self, d, token, True)
            self.assertEqual((st, b["number"]["rating"]), (200, True), b)
            port, anna_id = register_anna(self, d)
            direct_key(self, d, token, anna_id)
            anna = phone(d, "agent_bye", port, calls=2)
            # 3: Anna's phone rings at once (no queue); she talks 2 s and hangs up; 5 after the question
            caller = sipp_start(d, "caller_rate", 100, keys={
                "digit": "3", "caller": CALLER, "audio": AUDIO, "key_after_ms": 7500, "keys": "5",
                "wait_ms": 15000})
            ok(self, caller.wait())  # the question, "thank you", then our BYE
            c = last_call(d, token)
            self.assertEqual((c["status"], c["hangup_by"], c["rating"]), ("answered", "agent", 5), c)
            self.assertEqual((c["agent_id"], c["queue_team_id"], c["ivr_path"]), (anna_id, None, "3"), c)
            self.assertTrue(c["answered_at"] < c["talk_ended_at"] < c["ended_at"], c)
            # 1: the Sales queue, which does not ask; the number does
            caller = sipp_start(d, "caller_rate", 100, keys={
                "digit": "1", "caller": CALLER, "audio": AUDIO, "key_after_ms": 7500, "keys": "2",
                "wait_ms": 15000})
            ok(self, caller.wait())
            ok(self, anna.wait())

            def second():
                st, _, body = d.req("GET", "/api/v1/calls", token=token)
                return len(body["calls"]) == 2 and body["calls"][0]
            c = wait_for(second, timeout=15, msg="second call logged")
            self.assertEqual((c["status"], c["hangup_by"], c["rating"]), ("answered", "agent", 2), c)
            self.assertEqual((c["agent_id"], c["queue_team_id"]), (anna_id, team_id), c)
            self.assertEqual(d.metrics()["switchboard_voice_calls_active"], 0)
            d.stop()

    def test_number_rating_off_direct_agent_not_asked(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            st, _, b = number_rating(self, d, token, False)
            self.assertEqual((st, b["number"]["rating"]), (200, False), b)
            port, anna_id = register_anna(self, d)
            direct_key(self, d, token, anna_id)
            c = agent_hangs_up_unasked(self, d, token, port, "3")
            self.assertEqual((c["agent_id"], c["queue_team_id"]), (anna_id, None), c)
            d.stop()

    def test_rating_must_be_a_boolean(self):
        with Daemon() as d:
            token = d.token(DEMO_ADMIN[0])
            st, _, teams = d.req("GET", "/api/v1/teams", token=token)
            team_id = teams["teams"][0]["id"]
            st, _, b = d.req("PATCH", f"/api/v1/teams/{team_id}", {"routing": {"call_queue": {"rating": "yes"}}},
                             token=token)
            self.assertEqual((st, b["error"]["code"]), (422, "validation_failed"), b)
            self.assertIn("field 'routing.call_queue.rating': must be true or false", b["error"]["message"], b)
            d.stop()


if __name__ == "__main__":
    unittest.main()
