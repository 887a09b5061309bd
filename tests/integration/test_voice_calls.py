"""Inbound calls against SIPp (sip-tester) on loopback, decided by the IVR: the demo's
DID 100 is answered with its menu prompt (RTP from us); an RFC 4733 '1' sends the call to
the Sales queue (where it waits on hold until the caller hangs up); a number added
through the API with its own menu takes a SIP INFO '2' to Support; an unknown number
gets 404, an offer without G.711 gets 488, CANCEL while it rings, a silent caller is
hung up after no_media_seconds; malformed SIP (garbage, a huge header over UDP and TCP,
unknown dialogs) never hurts the daemon. Every call is in GET /api/v1/calls and in the
event log, with the path the caller took and the queue the IVR chose."""
import sqlite3
import os
import time
import unittest

from sbtest import DEMO_ADMIN, DEMO_ANNA, Daemon, assert_sipp_ok as ok, sip_send, sipp, wait_for

SIP = "[sip]\nlisten = 127.0.0.1:0\nno_media_seconds = 3\n"


def teams(d, token):
    st, _, body = d.req("GET", "/api/v1/teams", token=token)
    assert st == 200, body
    return {t["name"]: t["id"] for t in body["teams"]}


def calls(d, token, **params):
    q = "&".join(f"{k}={v}" for k, v in params.items())
    st, _, body = d.req("GET", "/api/v1/calls" + ("?" + q if q else ""), token=token)
    assert st == 200, (st, body)
    return body



class VoiceCallsTest(unittest.TestCase):
    def test_answer_prompt_dtmf_bye_and_log(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            team = teams(d, token)
            ok(self, sipp(d, "caller_dtmf", 100, keys={"digit": "1", "caller": "79991234567"}))
            rows = wait_for(lambda: calls(d, token)["calls"], msg="call logged")
            c = rows[0]
            # the IVR answered, '1' chose the Sales queue, the caller hung up waiting there
            self.assertEqual(c["status"], "abandoned")
            self.assertEqual(c["hangup_by"], "caller")
            self.assertEqual(c["hangup_cause"], "normal")
            self.assertEqual(c["ivr_path"], "1")
            self.assertEqual((c["queue_team_id"], c["agent_id"]), (team["Sales"], None))
            self.assertEqual((c["from"], c["to"], c["did"], c["direction"]), ("79991234567", "100", "100", "in"))
            self.assertTrue(c["offered_at"] <= c["answered_at"] <= c["ended_at"], c)
            self.assertTrue(c["source"].startswith("udp:127.0.0.1:"))
            m = d.metrics()
            # the prompt went out as RTP (50 packets a second) and the caller's audio came in
            self.assertGreater(m["switchboard_voice_rtp_packets_sent_total"], 50)
            self.assertGreater(m["switchboard_voice_rtp_packets_received_total"], 10)
            self.assertEqual(m["switchboard_voice_calls_active"], 0)
            # a number and a menu made through the API take effect at once:
            # SIP INFO digits, offered PCMU with telephone-event 101
            st, _, menu = d.req("POST", "/api/v1/ivr-menus", {
                "name": "Поддержка", "prompt": "menu_main", "extension_dialing": False,
                "options": [{"digit": "2", "action": "queue", "team_id": team["Support"]}]}, token=token)
            self.assertEqual(st, 201, menu)
            st, _, num = d.req("POST", "/api/v1/numbers", {
                "name": "Линия поддержки", "number": "101", "language": "en",
                "entry": {"action": "menu", "menu_id": menu["ivr_menu"]["id"]}}, token=token)
            self.assertEqual(st, 201, num)
            ok(self, sipp(d, "caller_info", 101, keys={"digit": "2"}))
            rows = wait_for(lambda: len(calls(d, token)["calls"]) == 2 and calls(d, token)["calls"])
            self.assertEqual((rows[0]["to"], rows[0]["ivr_path"], rows[0]["status"], rows[0]["queue_team_id"]),
                             ("101", "2", "abandoned", team["Support"]))
            # supervisors only, newest first, with a cursor
            st, _, _ = d.req("GET", "/api/v1/calls", token=d.token(DEMO_ANNA[0]))
            self.assertEqual(st, 403)
            page = calls(d, token, limit=1)
            self.assertEqual(len(page["calls"]), 1)
            older = calls(d, token, limit=1, cursor=page["next_cursor"])
            self.assertEqual(older["calls"][0]["id"], c["id"])
            self.assertIsNone(older["next_cursor"])
            st, _, _ = d.req("GET", "/api/v1/calls?limit=0", token=token)
            self.assertEqual(st, 422)
            d.stop()
            db = sqlite3.connect(os.path.join(d.data_dir, "switchboard.db"))
            n = db.execute("SELECT COUNT(*) FROM event WHERE entity = 'call' AND type = 'call.ended'").fetchone()[0]
            self.assertEqual(n, 2)

    def test_unknown_number_codec_cancel_silence(self):
        extra = SIP + "answer_delay_ms = 4000\n"  # DIDs ring 4 s: time to cancel
        with Daemon(config_extra=extra) as d:
            token = d.token(DEMO_ADMIN[0])
            ok(self, sipp(d, "caller_rejected", 999, keys={"code": 404, "codecs": "0"}))
            ok(self, sipp(d, "caller_rejected", 100, keys={"code": 488, "codecs": "18"}))
            ok(self, sipp(d, "caller_cancel", 100))
            ok(self, sipp(d, "caller_silent", 100, timeout=40))  # answered after 4 s, hung up 3 s later
            rows = wait_for(lambda: len(calls(d, token)["calls"]) == 4 and calls(d, token)["calls"])
            silent, cancel, codec, unknown = rows
            self.assertEqual((unknown["status"], unknown["sip_code"], unknown["hangup_by"]), ("rejected", 404, "system"))
            self.assertIsNone(unknown["did"])
            self.assertEqual((codec["status"], codec["sip_code"], codec["hangup_cause"]), ("failed", 488, "codec"))
            self.assertEqual((cancel["status"], cancel["hangup_by"], cancel["hangup_cause"]),
                             ("missed", "caller", "cancelled"))
            self.assertEqual((silent["status"], silent["hangup_by"], silent["hangup_cause"]),
                             ("failed", "system", "no_media"))
            self.assertEqual(d.metrics()["switchboard_voice_no_media_hangups_total"], 1)
            d.stop()

    def test_invite_flood_is_refused_with_503(self):
        extra = SIP + "invite_rate_per_second = 5\ninvite_burst = 5\n"
        with Daemon(config_extra=extra) as d:
            p = d.sip_port

            def invite(i):
                return sip_send(p, f"INVITE sip:999@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-f{i}"
                                   f";rport\r\nFrom: <sip:79990000000@127.0.0.1>;tag=f{i}\r\nTo: <sip:999@127.0.0.1>\r\n"
                                   f"Call-ID: flood-{i}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:9>\r\n"
                                   f"Content-Length: 0\r\n\r\n", timeout=3)
            codes = [invite(i)[:12] for i in range(20)]
            refused = [c for c in codes if c == b"SIP/2.0 503 "]
            # the burst of 5 (and what refilled meanwhile, 5 a second) gets an answer; the rest 503
            self.assertGreaterEqual(len(refused), 10, codes)
            self.assertTrue(all(c.startswith(b"SIP/2.0 4") for c in codes[:5]), codes)
            self.assertEqual(d.metrics()["switchboard_voice_invites_limited_total"], len(refused))
            time.sleep(1.5)  # the bucket refills: served again
            self.assertTrue(invite(99).startswith(b"SIP/2.0 4"))
            self.assertIn("INVITE flood src=127.0.0.1", d.log())
            self.assertEqual(d.req("GET", "/healthz")[0], 200)
            d.stop()

    def test_invite_rate_spares_trunk_addresses(self):
        # a provider named in [trunk] allow sends every customer's call from its own
        # address: the per-source limit is for strangers, not for it
        extra = SIP + "invite_rate_per_second = 5\ninvite_burst = 5\n[trunk]\nallow = 127.0.0.1/32\n"
        with Daemon(config_extra=extra) as d:
            p = d.sip_port
            codes = [sip_send(p, f"INVITE sip:999@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;"
                                 f"branch=z9hG4bK-t{i};rport\r\nFrom: <sip:79990000000@127.0.0.1>;tag=t{i}\r\n"
                                 f"To: <sip:999@127.0.0.1>\r\nCall-ID: trunk-{i}\r\nCSeq: 1 INVITE\r\n"
                                 f"Contact: <sip:a@127.0.0.1:9>\r\nContent-Length: 0\r\n\r\n", timeout=3)[:12]
                     for i in range(20)]
            self.assertTrue(all(c.startswith(b"SIP/2.0 4") for c in codes), codes)  # 404: no such number
            self.assertEqual(d.metrics()["switchboard_voice_invites_limited_total"], 0)
            self.assertNotIn("INVITE flood", d.log())
            d.stop()

    def test_malformed_sip(self):
        with Daemon(config_extra=SIP) as d:
            p = d.sip_port
            self.assertEqual(sip_send(p, b"\x00\xffgarbage\r\n\r\n", timeout=1), b"")
            self.assertEqual(sip_send(p, b"INVITE\r\n\r\n", timeout=1), b"")
            huge = ("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-h\r\n"
                    "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: huge\r\nCSeq: 1 OPTIONS\r\n"
                    "X-Big: " + "a" * 60000 + "\r\nContent-Length: 0\r\n\r\n")
            sip_send(p, huge, timeout=1)
            sip_send(p, huge.replace("a" * 60000, "b" * 300000), transport="tcp", timeout=2)
            # a BYE and an INFO for dialogs that do not exist: 481
            for method in ("BYE", "INFO"):
                r = sip_send(p, f"{method} sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{method}"
                                f";rport\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:100@127.0.0.1>;tag=2\r\n"
                                f"Call-ID: nope-{method}\r\nCSeq: 2 {method}\r\nContent-Length: 0\r\n\r\n")
                self.assertTrue(r.startswith(b"SIP/2.0 481"), r)
            # a REGISTER without a valid To user: 400
            r = sip_send(p, "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-r;rport\r\n"
                            "From: <sip:127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\n"
                            "Content-Length: 0\r\n\r\n")
            self.assertTrue(r.startswith(b"SIP/2.0 400"), r)
            # still serving SIP and HTTP
            r = sip_send(p, "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-o;rport\r\n"
                            "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\n"
                            "Content-Length: 0\r\n\r\n")
            self.assertTrue(r.startswith(b"SIP/2.0 200"), r)
            self.assertEqual(d.req("GET", "/healthz")[0], 200)
            d.stop()


if __name__ == "__main__":
    unittest.main()
