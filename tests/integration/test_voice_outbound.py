"""Outbound calls through a SIP trunk (click-to-call, call-back), against SIPp on loopback.

The provider's trunk is a SIPp UAS on a free port ([trunk] host): it challenges our INVITE
(401, digest), checks the Authorization it gets again with SIPp's verifyauth (the password),
checks the Request-URI (the customer's number) and the From (the caller ID), rings, answers,
sends audio and hangs up. Anna's phone (extension 202) is a SIPp UAS with -rtp_echo that
checks the From is the customer's number.

POST /api/v1/calls as Anna -> her phone rings first -> she answers -> the trunk is dialled
with the DID the customer last called us on as caller ID -> both connected, RTP relayed both
ways -> the customer hangs up -> call log row 'out' answered (hangup_by customer), and the
customer's call_back task (left by an earlier missed call) is done. Also: no trunk -> 409
no_trunk; no registered phone -> 409 no_phone; validation (number, blacklist, another agent's
call); a busy customer (486) -> status busy, with [trunk] from_number as caller ID and
prefix_numbers; early media (183 with SDP) heard by the agent before the answer; DELETE
while the agent's phone rings cancels it (failed, by system), and only
the call's agent or a supervisor may; a wrong trunk password -> the trunk refuses (403) ->
failed."""
import os
import subprocess
import tempfile
import unittest

from sbtest import (DEMO_ADMIN, DEMO_ANNA, DEMO_BORIS, Daemon, assert_sipp_ok as ok, binary, free_port, pcma_audio,
                    sipp, sipp_start, wait_for)

SIP = "[sip]\nlisten = 127.0.0.1:0\nno_media_seconds = 10\nring_timeout_seconds = 10\nqueue_max_wait_seconds = 40\n"
CUSTOMER = "79991230002"
E164 = "+" + CUSTOMER
TRUNK_USER = "sb-trunk"
TRUNK_PASSWORD = "trunk-Secr3t-pw"
FROM_NUMBER = "74950000001"
AUDIO = pcma_audio("out")



def trunk_config(port, password=TRUNK_PASSWORD, extra=""):
    return (f"[trunk]\nhost = 127.0.0.1:{port}\nusername = {TRUNK_USER}\npassword = {password}\n"
            f"from_number = {FROM_NUMBER}\ntransport = udp\nring_timeout_seconds = 20\n{extra}")


def get(d, token, path, status=200):
    st, _, body = d.req("GET", path, token=token)
    assert st == status, (path, st, body)
    return body


def agent_ids(d, token):
    return {a["email"].split("@")[0]: a["id"] for a in get(d, token, "/api/v1/agents")["agents"]}


def register(test, d, ext, port):
    ok(test, sipp(d, "register", ext, keys={"expires": 3600, "final": 200}, local_port=port,
                  extra=["-au", str(ext), "-ap", f"demo-sip-{ext}"]))


def phone(d, scenario, ext, port, **keys):
    """The agent's phone: it must see the customer's number in From (a regular expression)."""
    k = {"caller": "\\" + E164, "ring_ms": 500, "pt": 8, "codec": "8 PCMA"}
    k.update(keys)
    return sipp_start(d, scenario, ext, keys=k, local_port=port, extra=["-rtp_echo"], timeout=40)


def trunk(d, scenario, port, **keys):
    k = {"number": CUSTOMER, "callerid": FROM_NUMBER, "user": TRUNK_USER, "password": TRUNK_PASSWORD,
         "ring_ms": 1000, "talk_ms": 4000, "audio": AUDIO}
    k.update(keys)
    return sipp_start(d, scenario, "trunk", keys=k, local_port=port, timeout=40)


def outbound_rows(d, token):
    return [c for c in get(d, token, "/api/v1/calls")["calls"] if c["direction"] == "out"]


def last_outbound(d, token):
    return wait_for(lambda: outbound_rows(d, token) and outbound_rows(d, token)[0], timeout=20,
                    msg="outbound call logged")


def place(d, token, body, status=202):
    st, _, b = d.req("POST", "/api/v1/calls", body, token=token)
    assert st == status, (st, b)
    return b


class VoiceOutboundTest(unittest.TestCase):
    def test_call_back_answered_relays_and_closes_the_task(self):
        tp = free_port()
        with Daemon(config_extra=SIP + trunk_config(tp)) as d:
            admin = d.token(DEMO_ADMIN[0])
            anna_token = d.token(DEMO_ANNA[0])
            agents = agent_ids(d, admin)
            # the customer called DID 100 and hung up waiting: a call_back task for them
            ok(self, sipp(d, "caller_queue", 100, keys={"digit": "1", "caller": CUSTOMER, "wait_ms": 1500,
                                                         "audio": AUDIO}))
            missed = wait_for(lambda: [c for c in get(d, admin, "/api/v1/calls")["calls"]
                                       if c["callback_task_id"] is not None], timeout=20, msg="missed call")[0]
            self.assertEqual((missed["direction"], missed["did"]), ("in", "100"))
            task_id = missed["callback_task_id"]
            open_tasks = lambda: [k for k in get(d, admin, "/api/v1/tasks?status=open")["tasks"]
                                  if k["kind"] == "call_back"]
            self.assertEqual([k["id"] for k in open_tasks()], [task_id])

            lp = free_port()
            register(self, d, 202, lp)
            provider = trunk(d, "trunk_uas", tp, callerid="100")
            anna = phone(d, "agent_uas", 202, lp)
            ws = d.stream(anna_token)
            b = place(d, anna_token, {"to": "8 (999) 123-00-02", "task_id": task_id})
            call = b["call"]
            self.assertEqual((call["direction"], call["from"], call["to"], call["agent_id"], call["stage"]),
                             ("out", "100", E164, agents["anna"], "ringing_agent"))
            self.assertEqual((call["contact_id"], call["task_id"], call["ticket_id"]),
                             (missed["contact_id"], task_id, missed["ticket_id"]))
            self.assertLess(call["id"], 2 ** 53)  # a browser's number holds it
            # her phone rang with the customer's number, answered and got our BYE after the customer's
            ok(self, provider.wait())  # challenged, authenticated, answered, hung up
            ok(self, anna.wait())
            ws.recv_until(lambda m: m.get("type") == "call.answered" and m["data"].get("direction") == "out",
                          timeout=10)
            ws.recv_until(lambda m: m.get("type") == "call.ended" and m["data"].get("call_id") == call["id"],
                          timeout=10)

            row = last_outbound(d, admin)
            self.assertEqual((row["status"], row["hangup_by"], row["hangup_cause"]), ("answered", "customer", "normal"))
            self.assertEqual((row["from"], row["to"], row["did"]), ("100", E164, "100"))
            self.assertEqual((row["agent_id"], row["contact_id"], row["ticket_id"]),
                             (agents["anna"], missed["contact_id"], missed["ticket_id"]))
            self.assertTrue(row["offered_at"] < row["answered_at"] <= row["ended_at"], row)
            self.assertIsNotNone(row["recording_url"])  # [sip] record_calls is on by default
            m = d.metrics()
            self.assertEqual(m["switchboard_voice_trunk_calls_total"], 1)
            self.assertEqual(m["switchboard_voice_trunk_answered_total"], 1)
            self.assertEqual(m["switchboard_voice_legs_answered_total"], 1)
            # the customer's audio reached Anna's phone, and its echo came back to the trunk
            self.assertGreater(m["switchboard_voice_rtp_relayed_to_agent_total"], 50)
            self.assertGreater(m["switchboard_voice_rtp_relayed_to_caller_total"], 50)
            self.assertEqual(m["switchboard_voice_calls_active"], 0)
            # calling the customer back closed the loop
            wait_for(lambda: open_tasks() == [], msg="call_back task done")
            done = [k for k in get(d, admin, "/api/v1/tasks?status=done")["tasks"] if k["id"] == task_id]
            self.assertEqual(len(done), 1)
            ws.recv_until(lambda m: m.get("type") == "task.updated" and m["data"].get("id") == task_id
                          and m["data"].get("status") == "done", timeout=10)
            self.assertEqual(get(d, admin, "/api/v1/calls/missed")["calls"], [])
            # the call is on the customer's ticket: Anna's message with the recording
            msgs = get(d, admin, f"/api/v1/tickets/{missed['ticket_number']}")["messages"]
            out = [m for m in msgs if m["direction"] == "out"]
            self.assertEqual(len(out), 1, msgs)
            self.assertRegex(out[0]["text"], r"^Исходящий звонок, 0:0\d, звонил\(а\) Anna Sales / Анна Продажи$")
            self.assertEqual(out[0]["attachments"][0]["url"], f"/api/v1/calls/{row['id']}/recording")
            # the call is over: nothing to hang up
            st, _, b = d.req("DELETE", f"/api/v1/calls/{call['id']}", token=anna_token)
            self.assertEqual((st, b["error"]["code"]), (404, "not_found"))
            self.assertNotIn(TRUNK_PASSWORD, d.log())
            d.stop()

    def test_refusals(self):
        with Daemon(config_extra=SIP) as d:  # no [trunk]
            anna_token = d.token(DEMO_ANNA[0])
            b = place(d, anna_token, {"to": E164}, 409)
            self.assertEqual(b["error"]["code"], "no_trunk")
            d.stop()
        tp = free_port()
        with Daemon(config_extra=SIP + trunk_config(tp)) as d:
            admin = d.token(DEMO_ADMIN[0])
            anna_token = d.token(DEMO_ANNA[0])
            agents = agent_ids(d, admin)
            # Anna has extension 202 but no phone registered
            b = place(d, anna_token, {"to": E164}, 409)
            self.assertEqual(b["error"]["code"], "no_phone")
            self.assertEqual(place(d, anna_token, {"to": "12ab"}, 422)["error"]["code"], "validation_failed")
            self.assertEqual(place(d, anna_token, {}, 422)["error"]["code"], "validation_failed")
            self.assertEqual(place(d, anna_token, {"to": E164, "bogus": 1}, 422)["error"]["code"], "unknown_field")
            self.assertEqual(place(d, anna_token, {"to": E164, "contact_id": 999999}, 422)["error"]["code"],
                             "validation_failed")
            # an agent places calls for themselves only
            b = place(d, anna_token, {"to": E164, "agent_id": agents["boris"]}, 403)
            self.assertEqual(b["error"]["code"], "forbidden")
            st, _, b = d.req("POST", "/api/v1/blacklist", {"kind": "phone", "value": "8 999 123 00 02",
                                                           "reason": "спам"}, token=admin)
            self.assertEqual(st, 201, b)
            b = place(d, anna_token, {"to": E164}, 422)
            self.assertEqual(b["error"]["code"], "blacklisted")
            st, _, b = d.req("POST", "/api/v1/calls", {"to": E164}, token=None)
            self.assertEqual(st, 401, b)
            st, _, b = d.req("DELETE", "/api/v1/calls/12", token=anna_token)
            self.assertEqual((st, b["error"]["code"]), (404, "not_found"))
            st, h, b = d.req("PUT", "/api/v1/calls", {}, token=anna_token)
            self.assertEqual(st, 405, b)
            self.assertEqual(outbound_rows(d, admin), [])
            d.stop()

    def test_busy_customer(self):
        tp = free_port()
        with Daemon(config_extra=SIP + trunk_config(tp, extra="prefix_numbers = +\n")) as d:
            admin = d.token(DEMO_ADMIN[0])
            agents = agent_ids(d, admin)
            lp = free_port()
            register(self, d, 202, lp)
            # no call from them on record: the caller ID is [trunk] from_number; "+" before the digits
            provider = trunk(d, "trunk_busy", tp, number="\\" + E164)
            anna = phone(d, "agent_uas", 202, lp)
            b = place(d, admin, {"to": E164, "agent_id": agents["anna"]})  # a supervisor, for Anna
            self.assertEqual((b["call"]["from"], b["call"]["agent_id"], b["call"]["contact_id"]),
                             (FROM_NUMBER, agents["anna"], None))
            ok(self, provider.wait())
            ok(self, anna.wait())  # her phone was hung up when the customer turned out busy
            row = last_outbound(d, admin)
            self.assertEqual((row["status"], row["hangup_by"], row["sip_code"]), ("busy", "customer", 486))
            self.assertIsNone(row["ticket_id"])  # nobody known with that number: no ticket to put it on
            self.assertEqual((row["from"], row["to"], row["agent_id"], row["answered_at"]),
                             (FROM_NUMBER, E164, agents["anna"], None))
            m = d.metrics()
            self.assertEqual((m["switchboard_voice_trunk_calls_total"], m["switchboard_voice_trunk_answered_total"]),
                             (1, 0))
            self.assertEqual(m["switchboard_voice_calls_active"], 0)
            # an outbound busy call is no missed call of ours
            self.assertEqual(get(d, admin, "/api/v1/calls/missed?status=all")["calls"], [])
            d.stop()

    def test_early_media_reaches_the_agent(self):
        """The network's 183 with SDP: its audio goes to the agent's phone while the customer's
        phone still rings (instead of our ringback), then the same media once answered."""
        tp = free_port()
        with Daemon(config_extra=SIP + trunk_config(tp)) as d:
            anna_token = d.token(DEMO_ANNA[0])
            lp = free_port()
            register(self, d, 202, lp)
            provider = trunk(d, "trunk_early", tp, ring_ms=4000, talk_ms=1500)
            anna = phone(d, "agent_uas", 202, lp)
            try:
                place(d, anna_token, {"to": E164})
                # before the answer (trunk_answered still 0) the customer side's audio reaches her
                wait_for(lambda: d.metrics().get("switchboard_voice_trunk_early_media_total", 0) == 1, timeout=15,
                         msg="early media taken")
                wait_for(lambda: d.metrics()["switchboard_voice_rtp_relayed_to_agent_total"] > 50, timeout=3,
                         msg="early media relayed to the agent")
                self.assertEqual(d.metrics()["switchboard_voice_trunk_answered_total"], 0)
                ok(self, provider.wait())
                ok(self, anna.wait())
            finally:
                provider.kill()
                anna.kill()
            row = last_outbound(d, d.token(DEMO_ADMIN[0]))
            self.assertEqual((row["status"], row["hangup_by"]), ("answered", "customer"), row)
            self.assertEqual(d.metrics()["switchboard_voice_trunk_answered_total"], 1)
            d.stop()

    def test_hang_up_while_the_agent_rings(self):
        tp = free_port()
        with Daemon(config_extra=SIP + trunk_config(tp)) as d:
            admin = d.token(DEMO_ADMIN[0])
            boris_token = d.token(DEMO_BORIS[0])
            lp = free_port()
            register(self, d, 203, lp)
            boris = phone(d, "agent_cancelled", 203, lp)
            call = place(d, boris_token, {"to": E164})["call"]
            wait_for(lambda: d.metrics()["switchboard_voice_legs_invited_total"] >= 1, msg="his phone rings")
            # another call of his: he is busy with this one
            self.assertEqual(place(d, boris_token, {"to": E164}, 409)["error"]["code"], "agent_busy")
            # Anna (an agent) may not end Boris's call; he may
            st, _, b = d.req("DELETE", f"/api/v1/calls/{call['id']}", token=d.token(DEMO_ANNA[0]))
            self.assertEqual((st, b["error"]["code"]), (403, "forbidden"))
            st, _, b = d.req("DELETE", f"/api/v1/calls/{call['id']}", token=boris_token)
            self.assertEqual((st, b["call"]["id"], b["call"]["stage"]), (202, call["id"], "ending"))
            ok(self, boris.wait())  # CANCEL
            row = last_outbound(d, admin)
            self.assertEqual((row["status"], row["hangup_by"], row["hangup_cause"]), ("failed", "system", "normal"))
            self.assertEqual(d.metrics()["switchboard_voice_trunk_calls_total"], 0)  # the customer was never dialled
            d.stop()

    def test_wrong_trunk_password_is_refused(self):
        tp = free_port()
        with Daemon(config_extra=SIP + trunk_config(tp, password="not-the-password")) as d:
            anna_token = d.token(DEMO_ANNA[0])
            lp = free_port()
            register(self, d, 202, lp)
            provider = trunk(d, "trunk_uas", tp)
            anna = phone(d, "agent_uas", 202, lp)
            place(d, anna_token, {"to": CUSTOMER})
            r = provider.wait()
            self.assertNotEqual(r.returncode, 0)  # verifyauth found the digest wrong: 403
            ok(self, anna.wait())
            row = last_outbound(d, d.token(DEMO_ADMIN[0]))
            self.assertEqual((row["status"], row["sip_code"], row["hangup_by"]), ("failed", 403, "system"))
            self.assertNotIn("not-the-password", d.log())
            d.stop()

    def test_trunk_config_errors(self):
        """[trunk] values are checked at start; an error never shows the password."""
        secret = "p" * 200
        cases = [("transport = sctp\n", "bad value for [trunk] transport"),
                 ("host = sip provider.example\n", "bad value for [trunk] host"),
                 ("from_number = 7495\"0\n", "bad value for [trunk] from_number"),
                 ("prefix_numbers = 8x\n", "bad value for [trunk] prefix_numbers"),
                 ("ring_timeout_seconds = 0\n", "bad value for [trunk] ring_timeout_seconds"),
                 ("secret = x\n", "unknown key [trunk] secret"),
                 (f"password = {secret}\n", "bad value for [trunk] password")]
        with tempfile.TemporaryDirectory() as tmp:
            ini = os.path.join(tmp, "bad.ini")
            for line, message in cases:
                with open(ini, "w") as f:
                    f.write(f"[server]\nlisten = 127.0.0.1:0\ndata_dir = {tmp}/data\n[trunk]\nhost = 127.0.0.1:5070\n"
                            + line)
                r = subprocess.run([binary(), "serve", "--config", ini], capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 2, (line, r.stderr))
                self.assertIn(message, r.stderr)
                self.assertNotIn(secret, r.stderr + r.stdout)


if __name__ == "__main__":
    unittest.main()
