"""Call queues against SIPp phones (sip-tester) on loopback: the queue's decisions
(src/engine/callq.c) executed by the daemon. The three demo agents (extensions 201 Olga,
202 Anna, 203 Boris) join a team of their own whose number 555 goes straight to its queue;
each registers a SIPp phone that answers (or not) and the call log says who took each call.

- round_robin, longest_idle, fewest_calls: calls go around the members in turn;
- a returning customer's owner is rung first;
- forwarding schemes: steps in turn, the backup when nobody can be reached;
- a blacklisted caller gets busy (or a word and goodbye) and rings nobody;
  random: every call is answered by a member;
- ring_all: every phone rings, the quickest answers, the others are cancelled;
- an agent who is not online is not rung, and is as soon as they go online;
- wrap-up: a member is not rung again until it is over;
- the callback key ends the wait with a thank-you and counts a callback request;
- the maximum wait with "hangup" as the fallback says goodbye and ends the call;
- an agent on a call gets no chat meanwhile, and the chat queued for them arrives after."""
import os
import tempfile
import time
import unittest

from sbtest import DEMO_ADMIN, Daemon, free_port, inbound, sipp, sipp_start, wait_for

SIP = "[sip]\nlisten = 127.0.0.1:0\nno_media_seconds = 10\nring_timeout_seconds = 10\nqueue_max_wait_seconds = 40\n"
CALLER = "79990001122"
NUMBER = "555"
AUDIO = os.path.join(tempfile.gettempdir(), f"sb-alaw-q-{os.getpid()}.raw")
EMAILS = {201: "admin@demo.switchboard", 202: "anna@demo.switchboard", 203: "boris@demo.switchboard"}


def setUpModule():
    with open(AUDIO, "wb") as f:  # raw PCMA for SIPp's rtp_stream: any bytes are audio
        f.write(bytes(range(256)) * 64)


def tearDownModule():
    os.unlink(AUDIO)


class Line:
    """A daemon with the demo, a team of the three demo agents and number 555 into its queue."""

    def __init__(self, test, call_queue, members=(201, 202, 203), config=SIP):
        self.test = test
        self.d = Daemon(config_extra=config)
        self.d.__enter__()
        d = self.d
        self.admin = d.token(DEMO_ADMIN[0])
        st, _, agents = d.req("GET", "/api/v1/agents", token=self.admin)
        test.assertEqual(st, 200, agents)
        by_email = {a["email"]: a["id"] for a in agents["agents"]}
        self.agent = {ext: by_email[EMAILS[ext]] for ext in EMAILS}
        self.ext_of = {v: k for k, v in self.agent.items()}
        st, _, b = d.req("POST", "/api/v1/teams", {"name": "Линия", "member_ids": [self.agent[e] for e in members],
                                                   "routing": {"call_queue": call_queue}}, token=self.admin)
        test.assertEqual(st, 201, b)
        self.team = b["team"]["id"]
        st, _, b = d.req("POST", "/api/v1/numbers", {"name": "Линия", "number": NUMBER, "language": "ru",
                                                     "entry": {"action": "queue", "team_id": self.team}},
                         token=self.admin)
        test.assertEqual(st, 201, b)
        self.phones = []

    def close(self):
        for p in self.phones:
            p.kill()
        self.d.__exit__(None, None, None)

    def online(self, ext, presence="online"):
        st, _, b = self.d.req("POST", f"/api/v1/agents/{self.agent[ext]}/presence", {"presence": presence},
                              token=self.admin)
        self.test.assertEqual(st, 200, b)

    def phone(self, ext, scenario="agent_uas", calls=10, online=True, **keys):
        port = free_port()
        r = sipp(self.d, "register", ext, keys={"expires": 3600, "final": 200}, local_port=port,
                 extra=["-au", str(ext), "-ap", f"demo-sip-{ext}"])
        self.test.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        if online:
            self.online(ext)
        k = {"caller": CALLER, "ring_ms": 300, "pt": 8, "codec": "8 PCMA"}
        k.update(keys)
        p = sipp_start(self.d, scenario, ext, keys=k, calls=calls, local_port=port, extra=["-rtp_echo"], timeout=120)
        self.phones.append(p)
        return p

    def call(self, scenario="caller_queue", number=NUMBER, **keys):
        k = {"digit": "5", "caller": CALLER, "wait_ms": 4000, "audio": AUDIO}
        k.update(keys)
        return sipp(self.d, scenario, number, keys=k, timeout=60)

    def calls(self, n):
        def get():
            st, _, body = self.d.req("GET", "/api/v1/calls", token=self.admin)
            assert st == 200, body
            return len(body["calls"]) >= n and list(reversed(body["calls"][:n]))
        return wait_for(get, timeout=20, msg=f"{n} calls logged")

    def queue_figures(self):
        st, _, b = self.d.req("GET", "/api/v1/calls/queues", token=self.admin)
        self.test.assertEqual(st, 200, b)
        (row,) = [q for q in b["queues"] if q["team_id"] == self.team]
        return row

    def metric(self, name):
        return self.d.metrics().get(f'switchboard_{name}{{team="{self.team}"}}', 0)


def ok(test, r, d=None):
    log = ("\n--- daemon ---\n" + "\n".join(line for line in d.log().splitlines() if "voice" in line or "sip" in line)[-4000:]) if d else ""
    test.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:] + log)


class QueueStrategyTest(unittest.TestCase):
    def answered_by(self, line, n):
        calls = line.calls(n)
        self.assertEqual([c["status"] for c in calls], ["answered"] * n, calls)
        return [line.ext_of[c["agent_id"]] for c in calls]

    def test_turn_taking_strategies(self):
        for strategy in ("round_robin", "longest_idle", "fewest_calls"):
            with self.subTest(strategy=strategy):
                line = Line(self, {"strategy": strategy, "retry_seconds": 0})
                try:
                    for ext in (201, 202, 203):
                        line.phone(ext)
                    for _ in range(4):
                        ok(self, line.call())
                    # members in order (by agent id), then the first again: each took one call
                    self.assertEqual(self.answered_by(line, 4), [201, 202, 203, 201])
                    self.assertEqual(line.metric("voice_queue_answered_total"), 4)
                    q = line.queue_figures()
                    self.assertEqual((q["offered"], q["answered"], q["abandoned"]), (4, 4, 0), q)
                    self.assertTrue(0 < q["asa_seconds"] < 20, q)  # the IVR answers, then 300 ms of ringing
                    self.assertEqual((q["service_level"], q["abandonment_rate"]), (1.0, 0.0), q)
                    self.assertGreater(q["talk_seconds"], 1, q)
                    self.assertEqual(line.d.metrics()["switchboard_voice_legs_invited_total"], 4)
                finally:
                    line.close()

    def test_returning_customer_rings_their_agent_first(self):
        line = Line(self, {"strategy": "round_robin", "preferred_seconds": 10})
        try:
            d = line.d
            st, _, b = d.req("POST", "/api/v1/contacts", {"name": "Постоянный клиент", "phone": "+" + CALLER},
                             token=line.admin)
            self.assertEqual(st, 201, b)
            contact = b["contact"]["id"]
            st, _, b = d.req("PATCH", f"/api/v1/contacts/{contact}", {"owner_id": line.agent[203]}, token=line.admin)
            self.assertEqual(st, 200, b)
            for ext in (201, 202, 203):
                line.phone(ext)
            ok(self, line.call())
            # round_robin would start with 201: Boris owns the customer and answers
            self.assertEqual(self.answered_by(line, 1), [203])
            self.assertEqual(d.metrics()["switchboard_voice_legs_invited_total"], 1)
        finally:
            line.close()

    def test_blacklisted_caller_is_refused(self):
        for mode, expect in (("busy", "486"), ("prompt", None)):
            with self.subTest(mode=mode):
                line = Line(self, {"strategy": "ring_all"},
                            config=SIP.replace("[sip]\n", f"[sip]\nblacklist = {mode}\n"))
                try:
                    d = line.d
                    st, _, b = d.req("POST", "/api/v1/blacklist", {"kind": "phone", "value": "+" + CALLER,
                                                                   "reason": "спам"}, token=line.admin)
                    self.assertEqual(st, 201, b)
                    line.phone(202)
                    if expect:
                        ok(self, sipp(d, "caller_rejected", NUMBER, keys={"caller": CALLER, "code": expect, "codecs": "8"}), d)
                    else:
                        ok(self, line.call("caller_queue_bye", wait_ms=15000), d)  # a word, then our BYE
                    (c,) = line.calls(1)
                    self.assertEqual(c["status"], "rejected", c)
                    self.assertEqual(d.metrics()["switchboard_voice_legs_invited_total"], 0)
                    self.assertEqual(line.metric("voice_queue_joined_total"), 0)
                finally:
                    line.close()

    def scheme_number(self, line, steps, final, backup=None):
        doc = {"name": "Продажи: схема", "steps": steps, "final": final}
        if backup:
            doc["backup"] = backup
        st, _, b = line.d.req("POST", "/api/v1/forwarding-schemes", doc, token=line.admin)
        self.assertEqual(st, 201, b)
        st, _, n = line.d.req("POST", "/api/v1/numbers", {
            "name": "Схема", "number": "556", "language": "ru",
            "entry": {"action": "scheme", "scheme_id": b["forwarding_scheme"]["id"]}}, token=line.admin)
        self.assertEqual(st, 201, n)

    def test_forwarding_scheme_steps(self):
        """Anna alone for 3 s (she lets it ring), then the team one after another: Olga answers."""
        line = Line(self, {"strategy": "ring_all"}, members=(201, 203))
        try:
            d = line.d
            self.scheme_number(line, [
                {"targets": [{"agent": line.agent[202]}], "mode": "together", "seconds": 3},
                {"targets": [{"team": line.team}], "mode": "sequential", "seconds": 5}],
                final={"action": "hangup"})
            anna = line.phone(202, "agent_cancelled", calls=1)
            line.phone(201)
            t = time.monotonic()
            ok(self, sipp(d, "caller_queue", "556", keys={"digit": "5", "caller": CALLER, "wait_ms": 8000,
                                                         "audio": AUDIO}), d)
            ok(self, anna.wait())  # rang, then our CANCEL when her 3 s were over
            self.assertEqual(self.answered_by(line, 1), [201])
            self.assertEqual(d.metrics()["switchboard_voice_legs_invited_total"], 2)
            self.assertGreater(time.monotonic() - t, 3)
        finally:
            line.close()

    def test_forwarding_scheme_backup_when_nobody_is_reachable(self):
        line = Line(self, {"strategy": "ring_all", "max_wait_seconds": 2, "max_wait_fallback": "hangup"},
                    members=(201,))
        try:
            d = line.d
            self.scheme_number(line, [{"targets": [{"agent": line.agent[202]}], "mode": "together", "seconds": 5}],
                               final={"action": "hangup"}, backup={"action": "queue", "team_id": line.team})
            # nobody registered: the scheme cannot deliver, the backup (the team's queue) takes the call
            ok(self, line.call("caller_queue_bye", number="556", wait_ms=20000), d)
            (c,) = line.calls(1)
            self.assertEqual((c["status"], c["queue_team_id"]), ("missed", line.team), c)
            self.assertEqual(line.metric("voice_queue_timed_out_total"), 1)
            self.assertEqual(d.metrics()["switchboard_voice_legs_invited_total"], 0)
        finally:
            line.close()

    def test_random_rings_one_member_at_a_time(self):
        line = Line(self, {"strategy": "random"})
        try:
            for ext in (201, 202, 203):
                line.phone(ext)
            for _ in range(6):
                ok(self, line.call())
            got = self.answered_by(line, 6)
            self.assertTrue(set(got) <= {201, 202, 203}, got)
            self.assertGreater(len(set(got)), 1, got)
            self.assertEqual(line.d.metrics()["switchboard_voice_legs_invited_total"], 6)
        finally:
            line.close()

    def test_ring_all_quickest_answers_others_cancelled(self):
        line = Line(self, {"strategy": "ring_all"})
        try:
            slow = [line.phone(201, "agent_cancelled", calls=1), line.phone(203, "agent_cancelled", calls=1)]
            line.phone(202, ring_ms=500)
            ok(self, line.call())
            for p in slow:
                ok(self, p.wait())  # rang, then got our CANCEL
            self.assertEqual(self.answered_by(line, 1), [202])
            self.assertEqual(line.d.metrics()["switchboard_voice_legs_invited_total"], 3)
        finally:
            line.close()

    def test_offline_agent_rung_once_online(self):
        line = Line(self, {"strategy": "round_robin"}, members=(202,))
        try:
            line.phone(202, online=False)
            caller = sipp_start(line.d, "caller_queue", NUMBER,
                                keys={"digit": "5", "caller": CALLER, "wait_ms": 8000, "audio": AUDIO})
            wait_for(lambda: line.metric("voice_queue_waiting") == 1, msg="caller waiting")
            time.sleep(2)
            self.assertEqual(line.d.metrics()["switchboard_voice_legs_invited_total"], 0)
            line.online(202)
            wait_for(lambda: line.d.metrics()["switchboard_voice_legs_answered_total"] == 1, msg="answered")
            ok(self, caller.wait())
            self.assertEqual(self.answered_by(line, 1), [202])
        finally:
            line.close()

    def test_wrapup_keeps_the_agent_free_for_a_while(self):
        line = Line(self, {"strategy": "round_robin", "wrapup_seconds": 4}, members=(202,))
        try:
            line.phone(202)
            ok(self, line.call(wait_ms=500))
            ok(self, line.call(wait_ms=6500))  # waits out the wrap-up, then talks
            first, second = line.calls(2)
            self.assertEqual((first["status"], second["status"]), ("answered", "answered"))
            ended = time.mktime(time.strptime(first["ended_at"][:19], "%Y-%m-%dT%H:%M:%S"))
            answered = time.mktime(time.strptime(second["answered_at"][:19], "%Y-%m-%dT%H:%M:%S"))
            self.assertGreaterEqual(answered - ended, 3, (first, second))  # 4 s wrap-up, whole seconds
        finally:
            line.close()

    def test_callback_key_ends_the_wait(self):
        line = Line(self, {"strategy": "ring_all", "callback_digit": "*", "announce_seconds": 10})
        try:
            # the caller fails unless our BYE (after the thank-you) comes within 15 s; the
            # queue's max wait ([sip] 40 s) would come far later
            ok(self, line.call("caller_queue_key", key="*", key_after_ms=1500, wait_ms=15000), line.d)
            (c,) = line.calls(1)
            self.assertEqual((c["status"], c["hangup_by"]), ("missed", "system"))
            self.assertEqual(line.metric("voice_queue_callbacks_total"), 1)
            self.assertEqual(line.metric("voice_queue_waiting"), 0)
        finally:
            line.close()

    def test_max_wait_then_goodbye(self):
        line = Line(self, {"strategy": "ring_all", "max_wait_seconds": 3, "max_wait_fallback": "hangup"})
        try:
            # the caller fails unless our BYE comes within 20 s: the queue's 3 s, not [sip]'s 40 s
            ok(self, line.call("caller_queue_bye", wait_ms=20000), line.d)
            (c,) = line.calls(1)
            self.assertEqual((c["status"], c["hangup_by"], c["queue_team_id"]), ("missed", "system", line.team))
            self.assertEqual(line.metric("voice_queue_timed_out_total"), 1)
            q = line.queue_figures()
            self.assertEqual((q["offered"], q["answered"], q["missed"], q["service_level"]), (1, 0, 1, 0.0), q)
            st, _, b = line.d.req("GET", "/api/v1/calls/queues?service_level_seconds=0", token=line.admin)
            self.assertEqual((st, b["error"]["code"]), (422, "validation_failed"), b)
        finally:
            line.close()

    def test_agent_on_a_call_gets_no_chat(self):
        line = Line(self, {"strategy": "round_robin"}, members=(202,))
        try:
            d = line.d
            line.phone(202)
            caller = sipp_start(d, "caller_queue", NUMBER,
                                keys={"digit": "5", "caller": CALLER, "wait_ms": 6000, "audio": AUDIO})
            wait_for(lambda: d.metrics()["switchboard_voice_legs_answered_total"] == 1, msg="answered")
            st, _, b = inbound(d, {"external_id": "chat-during-call", "from": {"id": "visitor-q"},
                                   "text": "Здравствуйте, вопрос по заказу"})
            self.assertEqual(st, 200, b)
            ticket = b["ticket_id"]
            st, _, b = d.req("PATCH", f"/api/v1/tickets/{ticket}", {"team_id": line.team}, token=line.admin)
            self.assertEqual(st, 200, b)
            time.sleep(1)
            st, _, t = d.req("GET", f"/api/v1/tickets/{ticket}", token=line.admin)
            self.assertIsNone(t["ticket"]["assignee_id"], t)  # Anna talks: the chat waits
            ok(self, caller.wait())
            wait_for(lambda: d.req("GET", f"/api/v1/tickets/{ticket}", token=line.admin)[2]["ticket"]["assignee_id"]
                     == line.agent[202], msg="the chat reaches Anna after her call")
        finally:
            line.close()


if __name__ == "__main__":
    unittest.main()
