"""Calls after hours are told apart: a number whose calendar is closed now sends the call to
its after_hours destination (the Sales queue, nobody there); the caller hangs up waiting.
The call row says period "after_hours"; the message on the customer's ticket says the call
was missed after hours; the call-back task is due the callback time after the calendar
opens again, not after the call (nobody can call back at night). A call in business hours
keeps "business_hours" and the plain wording."""
import datetime
import unittest

from sbtest import DEMO_ADMIN, Daemon, assert_sipp_ok as ok, calls_of, pcma_audio, sipp, wait_for

SIP = "[sip]\nlisten = 127.0.0.1:0\nno_media_seconds = 10\nqueue_max_wait_seconds = 40\n"
AUDIO = pcma_audio("ah")


def iso(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def get(d, token, path):
    st, _, body = d.req("GET", path, token=token)
    assert st == 200, (path, st, body)
    return body


class AfterHoursTest(unittest.TestCase):
    def call_number(self, d, token, hours, caller):
        """A number 56x into Sales' queue with a calendar open `hours` (UTC, every day);
        a caller hangs up waiting: the call row, once logged."""
        st, _, teams = d.req("GET", "/api/v1/teams", token=token)
        sales = next(t["id"] for t in teams["teams"] if t["name"] == "Sales")
        st, _, cal = d.req("POST", "/api/v1/calendars", {
            "name": f"Часы {caller}", "time_zone": "UTC",
            "hours": {day: [hours] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}, token=token)
        self.assertEqual(st, 201, cal)
        number = "56" + caller[-1]
        st, _, n = d.req("POST", "/api/v1/numbers", {
            "name": "Линия", "number": number, "calendar_id": cal["calendar"]["id"],
            "entry": {"action": "queue", "team_id": sales}, "after_hours": {"action": "queue", "team_id": sales}},
            token=token)
        self.assertEqual(st, 201, n)
        ok(self, sipp(d, "caller_queue", number, keys={"digit": "5", "caller": caller, "wait_ms": 1500,
                                                       "audio": AUDIO}), d)
        return wait_for(lambda: next((c for c in calls_of(d, token) if c["from"] == caller), None),
                        timeout=15, msg="call logged")

    def test_after_hours_call(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            now = datetime.datetime.now(datetime.timezone.utc)
            # open one hour a day, six hours from now: closed now
            h = (now.hour + 6) % 24
            if h == 23:
                h = 22
            c = self.call_number(d, token, [f"{h:02d}:00", f"{h + 1:02d}:00"], "79990007771")
            self.assertEqual((c["status"], c["period"], c["did"]), ("abandoned", "after_hours", "561"), c)
            t = get(d, token, f"/api/v1/tickets/{c['ticket_number']}")
            self.assertRegex(t["messages"][0]["text"], r"^Пропущенный звонок в нерабочее время \(очередь «Sales»")
            (task,) = [k for k in get(d, token, "/api/v1/tasks?status=open")["tasks"]
                       if k["id"] == c["callback_task_id"]]
            ended = iso(c["ended_at"])
            opens = ended.replace(hour=h, minute=0, second=0, microsecond=0)
            if opens <= ended:
                opens += datetime.timedelta(days=1)
            minutes = get(d, token, "/api/v1/settings")["settings"]["missed_call_callback_minutes"]
            self.assertAlmostEqual((iso(task["due_at"]) - opens).total_seconds(), minutes * 60, delta=2)
            d.stop()

    def test_business_hours_call(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            c = self.call_number(d, token, ["00:00", "24:00"], "79990007772")
            self.assertEqual((c["status"], c["period"]), ("abandoned", "business_hours"), c)
            t = get(d, token, f"/api/v1/tickets/{c['ticket_number']}")
            self.assertRegex(t["messages"][0]["text"], r"^Пропущенный звонок \(очередь «Sales»")
            (task,) = [k for k in get(d, token, "/api/v1/tasks?status=open")["tasks"]
                       if k["id"] == c["callback_task_id"]]
            minutes = get(d, token, "/api/v1/settings")["settings"]["missed_call_callback_minutes"]
            self.assertAlmostEqual((iso(task["due_at"]) - iso(c["ended_at"])).total_seconds(), minutes * 60,
                                   delta=2)
            d.stop()


if __name__ == "__main__":
    unittest.main()
