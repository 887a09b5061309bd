"""The website's call-back form (POST /chat/callback) and its scheduler, against SIPp on loopback.

The chat channel (id 2 in the demo) is set up for call-backs by the Sales team (Anna, extension
202, is its only member with a phone here). The provider's trunk is a SIPp UAS on a free port
([trunk] host); Anna's phone is a SIPp UAS with -rtp_echo that checks the From is the customer's
number.

* bad input -> 400/422 naming the field; a channel without the setting -> 403; no trunk -> 409;
  a blacklisted number -> 422 refused (stored, never dialled); too many forms -> 429;
* a request out of the team's business hours stays queued (nobody is rung), and so it stays
  across a restart; once the hours allow it, Anna's phone rings first, then the trunk gets the
  INVITE for the number; the customer answers -> the request is done and the call-back task
  on the ticket is closed;
* a busy customer -> retried after retry_seconds -> failed after max_attempts, the task stays
  open and the ticket says so; a second form for the same number joins the pending request;
* the missed-calls report (GET /api/v1/calls/missed, JSON and CSV) lists an open request that
  no missed call accounts for as a `web_request` row (number, name, time, due time, status),
  newest first with the calls and counted in the totals; one that joined a customer's missed
  call is that call's row (once, naming the request); a called-back request leaves
  `status=open` (still in `all`, done), a cancelled one leaves the report."""
import datetime
import time
import unittest

from sbtest import (DEMO_ADMIN, DEMO_ANNA, Daemon, assert_sipp_ok as ok, free_port, pcma_audio, sipp, sipp_start,
                    wait_for)

SIP = "[sip]\nlisten = 127.0.0.1:0\nno_media_seconds = 10\nring_timeout_seconds = 10\nqueue_max_wait_seconds = 40\n"
CUSTOMER = "79991230077"
E164 = "+" + CUSTOMER
TRUNK_USER = "sb-trunk"
TRUNK_PASSWORD = "trunk-Secr3t-pw"
FROM_NUMBER = "74950000001"
CHANNEL = 2  # the demo's web chat
AUDIO = pcma_audio("cbform")



def trunk_config(port):
    return (f"[trunk]\nhost = 127.0.0.1:{port}\nusername = {TRUNK_USER}\npassword = {TRUNK_PASSWORD}\n"
            f"from_number = {FROM_NUMBER}\ntransport = udp\nring_timeout_seconds = 20\n")


def get(d, token, path, status=200):
    st, _, body = d.req("GET", path, token=token)
    assert st == status, (path, st, body)
    return body


def ids(d, token):
    teams = {t["name"]: t["id"] for t in get(d, token, "/api/v1/teams")["teams"]}
    agents = {a["email"].split("@")[0]: a["id"] for a in get(d, token, "/api/v1/agents")["agents"]}
    return teams, agents


def set_callback(test, d, token, **settings):
    """The chat channel's call-back settings (config.callback), keeping the rest of its config."""
    ch = get(d, token, f"/api/v1/channels/{CHANNEL}")["channel"]
    config = dict(ch["config"])
    if settings:
        config["callback"] = settings
    else:
        config.pop("callback", None)
    st, _, b = d.req("PATCH", f"/api/v1/channels/{CHANNEL}", {"config": config}, token=token)
    test.assertEqual(st, 200, b)


def form(d, body, status=202):
    st, _, b = d.req("POST", "/chat/callback", dict({"channel_id": CHANNEL}, **body))
    assert st == status, (st, b)
    return b


def register(test, d, ext, port, token):
    ok(test, sipp(d, "register", ext, keys={"expires": 3600, "final": 200}, local_port=port,
                  extra=["-au", str(ext), "-ap", f"demo-sip-{ext}"]))
    agent = {202: "anna"}[ext]
    _, agents = ids(d, token)
    st, _, b = d.req("POST", f"/api/v1/agents/{agents[agent]}/presence", {"presence": "online"}, token=token)
    test.assertEqual(st, 200, b)


def phone(d, port, calls=1):
    k = {"caller": "\\" + E164, "ring_ms": 500, "pt": 8, "codec": "8 PCMA"}
    return sipp_start(d, "agent_uas", 202, keys=k, calls=calls, local_port=port, extra=["-rtp_echo"], timeout=60)


def trunk(d, scenario, port, calls=1, **keys):
    k = {"number": CUSTOMER, "callerid": FROM_NUMBER, "user": TRUNK_USER, "password": TRUNK_PASSWORD,
         "ring_ms": 1000, "talk_ms": 3000, "audio": AUDIO}
    k.update(keys)
    return sipp_start(d, scenario, "trunk", keys=k, calls=calls, local_port=port, timeout=60)


def callbacks(d, token, status="all"):
    return get(d, token, f"/api/v1/callbacks?status={status}")["callbacks"]


def missed(d, token, status="open"):
    return get(d, token, f"/api/v1/calls/missed?status={status}")


def closed_calendar(d, token):
    """A calendar (UTC) whose only hour every day starts three hours from now: closed now."""
    hour = (datetime.datetime.now(datetime.timezone.utc).hour + 3) % 24
    end = "24:00" if hour == 23 else f"{hour + 1:02d}:00"
    day = [[f"{hour:02d}:00", end]]
    st, _, b = d.req("POST", "/api/v1/calendars", {
        "name": "Night shift", "time_zone": "UTC",
        "hours": {k: day for k in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}, token=token)
    assert st == 201, b
    return b["calendar"]["id"]


def set_team_calendar(test, d, token, team_id, calendar_id):
    team = get(d, token, f"/api/v1/teams/{team_id}")["team"]
    routing = dict(team.get("routing") or {})
    if calendar_id:
        routing["calendar_id"] = calendar_id
    else:
        routing.pop("calendar_id", None)
    st, _, b = d.req("PATCH", f"/api/v1/teams/{team_id}", {"routing": routing}, token=token)
    test.assertEqual(st, 200, b)


class CallbackFormTest(unittest.TestCase):
    def test_bad_input_and_refusals(self):
        with Daemon(config_extra=SIP) as d:  # no [trunk]: nobody could call back
            b = form(d, {"phone": E164}, 409)
            self.assertEqual(b["error"]["code"], "callback_unavailable")
            d.stop()
        tp = free_port()
        with Daemon(config_extra=SIP + trunk_config(tp)) as d:
            admin = d.token(DEMO_ADMIN[0])
            teams, _ = ids(d, admin)
            st, _, conf = d.req("GET", f"/chat/config?channel={CHANNEL}")
            self.assertEqual((st, conf["callback"]), (200, False))
            self.assertEqual(form(d, {"phone": E164}, 403)["error"]["code"], "callback_disabled")
            set_callback(self, d, admin, team_id=teams["Sales"])
            st, _, conf = d.req("GET", f"/chat/config?channel={CHANNEL}")
            self.assertEqual((st, conf["callback"]), (200, True))
            for body, field in [({}, "phone"), ({"phone": ""}, "phone"), ({"phone": "12ab"}, "phone"),
                                ({"phone": "123"}, "phone"), ({"phone": 79991230077}, "phone"),
                                ({"phone": E164, "name": "x" * 201}, "name"),
                                ({"phone": E164, "name": "a\u0007b"}, "name"),
                                ({"phone": E164, "comment": "c" * 1001}, "comment"),
                                ({"phone": E164, "lang": "ru;drop"}, "lang"),
                                ({"phone": E164, "channel_id": "2"}, "channel_id"),
                                ({"phone": E164, "channel_id": 0}, "channel_id")]:
                b = form(d, body, 422)
                self.assertEqual((b["error"]["code"], b["error"]["field"]), ("validation_failed", field), body)
            b = form(d, {"phone": E164, "extra": 1}, 422)
            self.assertEqual((b["error"]["code"], b["error"]["field"]), ("unknown_field", "extra"))
            st, _, b = d.req("POST", "/chat/callback", raw=b"{not json", headers={"Content-Type": "application/json"})
            self.assertEqual(st, 400, b)
            self.assertEqual(form(d, {"phone": E164, "channel_id": 999}, 404)["error"]["code"], "not_found")
            st, h, b = d.req("GET", "/chat/callback")
            self.assertEqual(st, 405, b)
            # a blacklisted number is stored as refused and never dialled
            st, _, b = d.req("POST", "/api/v1/blacklist", {"kind": "phone", "value": "8 999 123 00 77",
                                                           "reason": "спам"}, token=admin)
            self.assertEqual(st, 201, b)
            b = form(d, {"phone": "8 (999) 123-00-77", "name": "Spam"}, 422)
            self.assertEqual((b["error"]["code"], b["error"]["field"]), ("refused", "phone"))
            rows = callbacks(d, admin)
            self.assertEqual([(r["phone"], r["status"], r["reason"], r["ticket_id"]) for r in rows],
                             [(E164, "refused", "blacklisted", None)])
            # supervisors only
            st, _, b = d.req("GET", "/api/v1/callbacks", token=d.token(DEMO_ANNA[0]))
            self.assertEqual(st, 403, b)
            st, _, b = d.req("GET", "/api/v1/callbacks?status=nope", token=admin)
            self.assertEqual((st, b["error"]["code"]), (422, "validation_failed"))
            # the channel's settings are checked when saved
            ch = get(d, admin, f"/api/v1/channels/{CHANNEL}")["channel"]
            for bad, field in [({"team_id": teams["Sales"], "max_attempts": 99}, "config.callback.max_attempts"),
                               ({"team_id": teams["Sales"], "retry_seconds": 1}, "config.callback.retry_seconds"),
                               ({"team_id": 999}, "config.callback.team_id"), ({}, "config.callback.team_id"),
                               ({"team_id": teams["Sales"], "when": 1}, "config.callback.when")]:
                st, _, b = d.req("PATCH", f"/api/v1/channels/{CHANNEL}", {"config": dict(ch["config"], callback=bad)},
                                 token=admin)
                self.assertEqual((st, b["error"]["code"]), (422, "validation_failed"), bad)
                self.assertIn(field, b["error"]["message"])
            # one address may send few forms (the refused one counted too)
            statuses = [d.req("POST", "/chat/callback", {"channel_id": CHANNEL, "phone": f"+7999123{n:04d}"})[0]
                        for n in range(12)]
            self.assertIn(429, statuses)
            # disabled, no such channel and refused counted: they passed validation
            self.assertEqual(statuses.count(202), 10 - 3)
            self.assertEqual(d.metrics()["switchboard_voice_trunk_calls_total"], 0)
            d.stop()

    def test_out_of_hours_queued_across_restart_then_called_back(self):
        tp = free_port()
        with Daemon(config_extra=SIP + trunk_config(tp)) as d:
            admin = d.token(DEMO_ADMIN[0])
            teams, agents = ids(d, admin)
            cal = closed_calendar(d, admin)
            set_team_calendar(self, d, admin, teams["Sales"], cal)
            set_callback(self, d, admin, team_id=teams["Sales"], max_attempts=2, retry_seconds=5)
            lp = free_port()
            register(self, d, 202, lp, admin)  # Anna is online with a phone, but it is out of hours
            b = form(d, {"phone": "8 999 123-00-77", "name": "Иван", "comment": "После 18:00, пожалуйста",
                         "lang": "ru"})["callback"]
            self.assertEqual((b["status"], b["duplicate"], b["within_hours"], b["attempts"], b["max_attempts"]),
                             ("queued", False, False, 0, 2))
            self.assertIsNotNone(b["expected_at"])
            # the same number again joins the pending request
            again = form(d, {"phone": E164, "comment": "Жду звонка"})["callback"]
            self.assertEqual((again["id"], again["duplicate"]), (b["id"], True))
            row = callbacks(d, admin)[0]
            self.assertEqual((row["id"], row["status"], row["phone"], row["requests"], row["team_id"]),
                             (b["id"], "queued", E164, 2, teams["Sales"]))
            self.assertIsNotNone(row["next_attempt_at"])
            # on the contact's ticket, with a call-back task, like a missed call
            texts = [m["text"] for m in get(d, admin, f"/api/v1/tickets/{row['ticket_number']}")["messages"]]
            self.assertTrue(any("Запрос обратного звонка с сайта" in t and "После 18:00" in t for t in texts), texts)
            self.assertTrue(any("Жду звонка" in t for t in texts), texts)
            tasks = [k for k in get(d, admin, "/api/v1/tasks?status=open")["tasks"] if k["kind"] == "call_back"]
            self.assertEqual([k["id"] for k in tasks], [row["task_id"]])
            time.sleep(2.5)  # several ticks: nobody is rung out of hours
            self.assertEqual(d.metrics().get("switchboard_voice_legs_invited_total", 0), 0)
            self.assertEqual(callbacks(d, admin, "pending")[0]["status"], "queued")
            # no missed call of this customer: the missed-calls report lists the request itself
            rep = missed(d, admin)
            self.assertEqual(rep["totals"], {"all": 1, "missed_calls": 0, "web_requests": 1}, rep)
            lead = rep["calls"][0]
            self.assertEqual((lead["kind"], lead["callback_id"], lead["call_id"], lead["phone"], lead["name"],
                              lead["status"], lead["attempts"]), ("web_request", b["id"], None, E164, "Иван",
                                                                  "queued", 2))
            self.assertEqual((lead["requested_at"], lead["due_at"]), (row["created_at"], row["next_attempt_at"]))
            self.assertEqual((lead["last_call_at"], lead["waited_seconds"]), (None, None))
            self.assertEqual((lead["queue_team_id"], lead["queue_name"]), (teams["Sales"], "Sales"))
            self.assertEqual((lead["ticket_number"], lead["task"]["id"], lead["task"]["status"]),
                             (row["ticket_number"], row["task_id"], "open"))

            d.restart()  # the request is read back from the store
            self.assertEqual([(r["id"], r["status"]) for r in callbacks(d, admin, "pending")], [(b["id"], "queued")])
            register(self, d, 202, lp, admin)  # phones register again after a restart
            anna = phone(d, lp)
            provider = trunk(d, "trunk_uas", tp)
            set_team_calendar(self, d, admin, teams["Sales"], None)  # now always open
            # Anna's phone rings first (From the customer), then the trunk is asked for the number
            ok(self, provider.wait())
            ok(self, anna.wait())
            done = wait_for(lambda: [r for r in callbacks(d, admin) if r["status"] == "done"], timeout=20,
                            msg="request done")[0]
            self.assertEqual((done["id"], done["attempts"], done["last_result"], done["agent_id"]),
                             (b["id"], 1, "answered", agents["anna"]))
            out = [c for c in get(d, admin, "/api/v1/calls")["calls"] if c["direction"] == "out"]
            self.assertEqual([(c["status"], c["to"], c["from"], c["agent_id"], c["contact_id"]) for c in out],
                             [("answered", E164, FROM_NUMBER, agents["anna"], done["contact_id"])])
            wait_for(lambda: [k for k in get(d, admin, "/api/v1/tasks?status=open")["tasks"]
                              if k["kind"] == "call_back"] == [], timeout=10, msg="call-back task closed")
            # called back: no longer waiting, but still in the whole list
            self.assertEqual(missed(d, admin)["calls"], [])
            rep = missed(d, admin, "all")
            self.assertEqual([(r["kind"], r["callback_id"], r["status"], r["task"]["status"]) for r in rep["calls"]],
                             [("web_request", b["id"], "done", "done")])
            self.assertEqual(rep["totals"], {"all": 1, "missed_calls": 0, "web_requests": 1})
            d.stop()

    def test_missed_calls_report_with_website_requests(self):
        tp = free_port()
        with Daemon(config_extra=SIP + trunk_config(tp)) as d:  # nobody has a phone: nothing is dialled
            admin = d.token(DEMO_ADMIN[0])
            teams, _ = ids(d, admin)
            set_callback(self, d, admin, team_id=teams["Sales"])
            # the customer calls 100, presses 1 (Sales) and hangs up while waiting: a missed call
            ok(self, sipp(d, "caller_queue", 100, keys={"digit": "1", "caller": CUSTOMER, "wait_ms": 1500,
                                                        "audio": AUDIO}))
            call = wait_for(lambda: (lambda c: c and c[0]["callback_task_id"] and c[0])(
                get(d, admin, "/api/v1/calls")["calls"]), timeout=20, msg="missed call on a ticket")
            # then asks on the website too: the request joins the call's call-back task
            joined = form(d, {"phone": E164, "name": "Иван"})["callback"]
            self.assertEqual(joined["duplicate"], False)
            req = callbacks(d, admin)[0]
            self.assertEqual(req["task_id"], call["callback_task_id"])
            # another customer asks on the website only
            other = form(d, {"phone": "+79991230078", "name": "Ольга", "comment": "после обеда"})["callback"]
            rep = missed(d, admin)
            self.assertEqual(rep["totals"], {"all": 2, "missed_calls": 1, "web_requests": 1}, rep)
            # newest first: Olga's request, then the customer's call, once, naming their request
            self.assertEqual([(r["kind"], r["call_id"], r["callback_id"]) for r in rep["calls"]],
                             [("web_request", None, other["id"]), ("call", call["id"], joined["id"])])
            web, row = rep["calls"]
            self.assertEqual((web["phone"], web["name"], web["status"], web["attempts"], web["task"]["status"]),
                             ("+79991230078", "Ольга", "queued", 1, "open"))
            self.assertIsNotNone(web["requested_at"])
            self.assertIsNotNone(web["due_at"])
            self.assertEqual((row["phone"], row["status"], row["task"]["id"], row["attempts"], row["requested_at"]),
                             (CUSTOMER, call["status"], call["callback_task_id"], 1, None))
            self.assertEqual(row["due_at"], row["task"]["due_at"])
            self.assertEqual(row["last_call_at"], call["offered_at"])
            # the period: the requests' time counts like the calls'
            st, _, empty = d.req("GET", "/api/v1/calls/missed?to=2020-01-01T00:00:00Z", token=admin)
            self.assertEqual((st, empty["calls"], empty["totals"]["all"]), (200, [], 0))
            # the CSV: the same rows, the kind and the request's state at the end
            st, _, csv = d.req("GET", "/api/v1/calls/missed?format=csv", token=admin)
            self.assertEqual(st, 200)
            lines = csv.lstrip("\ufeff").split("\r\n")
            self.assertEqual(lines[0].split(",")[-2:], ["Kind", "Request"])
            self.assertEqual(len([x for x in lines if x]), 3, lines)
            first, second = lines[1].split(","), lines[2].split(",")
            # (a leading '+' gets the apostrophe a spreadsheet needs to keep it text)
            self.assertEqual((first[1], first[2], first[5], first[-2], first[-1]),
                             ('"\'+79991230078"', "Ольга", "", "website request", "queued"))
            self.assertEqual((second[1], second[-2], second[-1]), (CUSTOMER, "call", ""))
            st, _, csv = d.req("GET", "/api/v1/calls/missed?format=csv&lang=ru&delimiter=semicolon", token=admin)
            self.assertIn(";заявка с сайта;в очереди\r\n", csv)
            # a cancelled request is no lead any more, in either list
            st, _, b = d.req("DELETE", f"/api/v1/callbacks/{other['id']}", token=admin)
            self.assertEqual(st, 200, b)
            for status in ("open", "all"):
                rep = missed(d, admin, status)
                self.assertEqual([(r["kind"], r["call_id"]) for r in rep["calls"]], [("call", call["id"])], status)
                self.assertEqual(rep["totals"]["web_requests"], 0)
            d.stop()

    def test_busy_customer_retried_then_failed(self):
        tp = free_port()
        with Daemon(config_extra=SIP + trunk_config(tp)) as d:
            admin = d.token(DEMO_ADMIN[0])
            teams, agents = ids(d, admin)
            set_callback(self, d, admin, team_id=teams["Sales"], max_attempts=2, retry_seconds=5)
            lp = free_port()
            register(self, d, 202, lp, admin)
            anna = phone(d, lp, calls=2)
            provider = trunk(d, "trunk_busy", tp, calls=2)
            t0 = time.monotonic()
            b = form(d, {"phone": E164, "name": "Jane", "lang": "en"})["callback"]
            self.assertEqual((b["status"], b["within_hours"]), ("queued", True))  # Sales has no calendar
            ok(self, provider.wait())  # two INVITEs, both busy
            ok(self, anna.wait())
            row = wait_for(lambda: [r for r in callbacks(d, admin) if r["status"] == "failed"], timeout=20,
                           msg="request failed")[0]
            self.assertGreaterEqual(time.monotonic() - t0, 5)  # retry_seconds between the two
            self.assertEqual((row["attempts"], row["last_result"], row["next_attempt_at"]), (2, "busy", None))
            out = [c for c in get(d, admin, "/api/v1/calls")["calls"] if c["direction"] == "out"]
            self.assertEqual([c["status"] for c in out], ["busy", "busy"])
            # the task stays open, the ticket says nobody got through
            tasks = [k for k in get(d, admin, "/api/v1/tasks?status=open")["tasks"] if k["kind"] == "call_back"]
            self.assertEqual([k["id"] for k in tasks], [row["task_id"]])
            texts = [m["text"] for m in get(d, admin, f"/api/v1/tickets/{row['ticket_number']}")["messages"]]
            self.assertTrue(any("no answer after 2 attempt" in t for t in texts), texts)
            # a new form for the number makes a new request; a supervisor may cancel a queued one
            set_callback(self, d, admin, team_id=teams["Support"])  # nobody of Support has a phone here
            b2 = form(d, {"phone": E164})["callback"]
            self.assertNotEqual(b2["id"], b["id"])
            st, _, c = d.req("DELETE", f"/api/v1/callbacks/{b2['id']}", token=admin)
            self.assertEqual((st, c["callback"]["status"]), (200, "cancelled"))
            st, _, c = d.req("DELETE", f"/api/v1/callbacks/{b2['id']}", token=admin)
            self.assertEqual((st, c["error"]["code"]), (409, "not_queued"))
            self.assertNotIn(CUSTOMER, d.log())
            d.stop()


if __name__ == "__main__":
    unittest.main()
