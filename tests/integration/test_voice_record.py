"""Call recording and voicemail against SIPp (sip-tester) on loopback; the WAV files are
read back with Python's `wave` module.

* Voicemail through a menu (key 9): after the voicemail prompt and the beep the caller talks
  3 s then sends silence -> we hang up voicemail_silence_seconds after they stopped; the
  file under DATA/recordings/YYYY-MM/ is mono 8 kHz 16-bit, its voice lasts the talk time and
  its end is the silence cut-off.
* Voicemail as a number's entry (the call is answered for it): the caller talks 2 s and then
  sends no RTP at all -> the gap is silence in the file and ends the message the same way.
* A voicemail cut at voicemail_max_seconds; a recording that cannot be created (a file where
  the directory goes) ends the voicemail at once, counted as failed.
* A queue call answered by a SIPp phone echoing the audio (-rtp_echo): a stereo file, the
  caller left and the agent right, both carrying audio, aligned (the echo is found in the
  right channel within a few milliseconds of the left), as long as the conversation."""
import array
import datetime
import glob
import os
import random
import sys
import tempfile
import time
import unittest
import wave

from sbtest import DEMO_ADMIN, Daemon, assert_sipp_ok as ok, free_port, sipp, sipp_start, wait_for

SIP = ("[log]\nlevel = info\n[sip]\nlisten = 127.0.0.1:0\nno_media_seconds = 15\nring_timeout_seconds = 10\n"
       "queue_max_wait_seconds = 40\nvoicemail_silence_seconds = 3\nvoicemail_max_seconds = 60\n")
CALLER = "79991234567"
SILENCE_MS = 3000
TMP = tempfile.mkdtemp(prefix="sb-rec-")


def pcma_file(name, speech_s, silence_s=0.0, seed=1):
    """Raw PCMA for SIPp's rtp_stream: speech_s seconds of loud random audio (never periodic,
    so the echo can be found exactly), then silence_s seconds of A-law silence (0xd5)."""
    rnd = random.Random(seed)
    loud = [b for b in range(256) if b & 0x70 >= 0x40]  # segments 4-7: |x| >= 1024 or so
    data = bytes(rnd.choice(loud) for _ in range(int(speech_s * 8000)))
    data += b"\xd5" * int(silence_s * 8000)
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def setUpModule():
    global TALK, GAP, LOOP
    TALK = pcma_file("talk3-silence15.raw", 3.0, 15.0)
    GAP = pcma_file("talk2.raw", 2.0)
    LOOP = pcma_file("loop.raw", 2.0, seed=2)


def tearDownModule():
    for f in glob.glob(os.path.join(TMP, "*")):
        os.unlink(f)
    os.rmdir(TMP)



def ids(d, token):
    st, _, teams = d.req("GET", "/api/v1/teams", token=token)
    assert st == 200, teams
    st, _, agents = d.req("GET", "/api/v1/agents", token=token)
    assert st == 200, agents
    return ({t["name"]: t["id"] for t in teams["teams"]},
            {a["email"].split("@")[0]: a["id"] for a in agents["agents"]})


def last_call(d, token, n=1):
    def get():
        st, _, body = d.req("GET", "/api/v1/calls", token=token)
        assert st == 200, body
        return len(body["calls"]) >= n and body["calls"][0]
    return wait_for(get, timeout=15, msg="call logged")


def ms(iso):
    """Unix ms of the API's "2026-11-24T04:34:44.342Z"."""
    t = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return round(t.timestamp() * 1000)


def recordings(d, pattern="*.wav"):
    return sorted(glob.glob(os.path.join(d.data_dir, "recordings", "*", pattern)))


def read_wav(path):
    """(channels, rate, width, [samples of channel 0], [samples of channel 1] or None)"""
    with wave.open(path, "rb") as w:
        ch, rate, width, n = w.getnchannels(), w.getframerate(), w.getsampwidth(), w.getnframes()
        raw = w.readframes(n)
    a = array.array("h")
    a.frombytes(raw)
    if sys.byteorder == "big":
        a.byteswap()
    assert len(a) == n * ch, (len(a), n, ch)
    return ch, rate, width, a[0::ch], (a[1::ch] if ch == 2 else None)


def voiced_frames(samples, threshold=300):
    """One bool per 20 ms frame: its RMS is over the threshold (the daemon's rule)."""
    out = []
    for i in range(0, len(samples) - 159, 160):
        fr = samples[i:i + 160]
        out.append(sum(s * s for s in fr) / 160 > threshold * threshold)
    return out


def speech_span(samples):
    """(first voiced ms, last voiced ms + 20, voiced frames) of a channel."""
    v = voiced_frames(samples)
    first = v.index(True)
    last = len(v) - 1 - v[::-1].index(True)
    return first * 20, (last + 1) * 20, sum(v)


class VoiceRecordTest(unittest.TestCase):
    def check_voicemail_file(self, path, talk_ms):
        ch, rate, width, left, right = read_wav(path)
        self.assertEqual((ch, rate, width), (1, 8000, 2))
        self.assertIsNone(right)
        duration = len(left) / 8.0
        start, end, nvoiced = speech_span(left)
        # the caller started talking after the beep, into the recording
        self.assertLess(start, 2500, (start, end, duration))
        # their voice lasts the talk time, without holes
        self.assertAlmostEqual(end - start, talk_ms, delta=250)
        self.assertAlmostEqual(nvoiced * 20, talk_ms, delta=250)
        # the file ends voicemail_silence_seconds after they stopped
        self.assertAlmostEqual(duration - end, SILENCE_MS, delta=300)
        self.assertAlmostEqual(duration, start + talk_ms + SILENCE_MS, delta=400)
        return duration

    def test_voicemail_from_menu_cut_by_silence(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            team, _ = ids(d, token)
            st, _, menu = d.req("POST", "/api/v1/ivr-menus", {
                "name": "Messages", "prompt": "menu_main", "extension_dialing": False,
                "options": [{"digit": "9", "action": "voicemail", "team_id": team["Sales"]}]}, token=token)
            self.assertEqual(st, 201, menu)
            st, _, num = d.req("POST", "/api/v1/numbers", {
                "name": "Messages line", "number": "105", "language": "en",
                "entry": {"action": "menu", "menu_id": menu["ivr_menu"]["id"]}}, token=token)
            self.assertEqual(st, 201, num)
            t0 = time.monotonic()
            # 9 after 0.5 s; the prompt (2.5 s) and the beep (0.4 s) later the caller talks 3 s,
            # then sends silence for 15 s: our BYE must come about 3 s after they stopped
            ok(self, sipp(d, "caller_voicemail", 105, keys={
                "caller": CALLER, "digit": "9", "digit_ms": 500, "talk_after_ms": 4000,
                "audio": TALK, "bye_within_ms": 3000 + SILENCE_MS + 2500}))
            elapsed = time.monotonic() - t0
            self.assertLess(elapsed, 0.5 + 4 + 3 + 3 + 2.5 + 1)
            files = wait_for(lambda: recordings(d, "*-vm.wav"), msg="voicemail file")
            self.assertEqual(len(files), 1, files)
            name = os.path.basename(files[0])
            self.assertRegex(os.path.relpath(files[0], d.data_dir), r"^recordings/\d{4}-\d{2}/\d{13}-\d+-vm\.wav$")
            duration = self.check_voicemail_file(files[0], 3000)
            c = last_call(d, token)
            self.assertEqual((c["hangup_by"], c["hangup_cause"], c["ivr_path"]), ("system", "normal", "9"))
            self.assertEqual(c["queue_team_id"], team["Sales"])
            self.assertTrue(name.startswith(str(ms(c["offered_at"])) + "-"), (name, c["offered_at"]))
            if "recording_ms" in c:  # the call log's view of it
                self.assertAlmostEqual(c["recording_ms"], duration, delta=25)
            m = d.metrics()
            self.assertEqual(m["switchboard_voice_recordings_started_total"], 1)
            self.assertEqual(m["switchboard_voice_recordings_finished_total"], 1)
            self.assertEqual(m["switchboard_voice_recordings_failed_total"], 0)
            self.assertEqual(m["switchboard_voice_calls_active"], 0)
            d.stop()

    def test_voicemail_entry_gap_is_silence(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            team, _ = ids(d, token)
            # a number whose entry is voicemail: nothing else answers it, so voicemail does
            st, _, num = d.req("POST", "/api/v1/numbers", {
                "name": "Support messages", "number": "106", "language": "en",
                "entry": {"action": "voicemail", "team_id": team["Support"]}}, token=token)
            self.assertEqual(st, 201, num)
            # 2 s of talk, then no RTP at all: the gap is silence in the file and ends it
            ok(self, sipp(d, "caller_voicemail", 106, keys={
                "caller": CALLER, "digit": "5", "digit_ms": 500, "talk_after_ms": 3000,
                "audio": GAP, "bye_within_ms": 2000 + SILENCE_MS + 2500}))
            files = wait_for(lambda: recordings(d, "*-vm.wav"), msg="voicemail file")
            self.assertEqual(len(files), 1, files)
            self.check_voicemail_file(files[0], 2000)
            c = last_call(d, token)
            self.assertEqual((c["hangup_by"], c["queue_team_id"]), ("system", team["Support"]))
            d.stop()

    def test_voicemail_max_length_and_failure(self):
        extra = SIP.replace("voicemail_max_seconds = 60", "voicemail_max_seconds = 2")
        with Daemon(config_extra=extra) as d:
            token = d.token(DEMO_ADMIN[0])
            team, _ = ids(d, token)
            st, _, num = d.req("POST", "/api/v1/numbers", {
                "name": "Messages", "number": "107", "language": "en",
                "entry": {"action": "voicemail", "team_id": team["Sales"]}}, token=token)
            self.assertEqual(st, 201, num)
            # a file where the recordings directory goes: the recording cannot be made and
            # the call ends right after the beep
            blocker = os.path.join(d.data_dir, "recordings")
            with open(blocker, "w") as f:
                f.write("not a directory")
            ok(self, sipp(d, "caller_voicemail", 107, keys={
                "digit": "5", "digit_ms": 500, "talk_after_ms": 1000, "audio": LOOP, "bye_within_ms": 4000}))
            m = d.metrics()
            self.assertEqual((m["switchboard_voice_recordings_failed_total"],
                              m["switchboard_voice_recordings_started_total"]), (1, 0))
            os.unlink(blocker)
            # talking on past voicemail_max_seconds: cut at exactly 2 s, then our BYE
            ok(self, sipp(d, "caller_voicemail", 107, keys={
                "digit": "5", "digit_ms": 0, "talk_after_ms": 2600, "audio": pcma_file("long.raw", 8.0),
                "bye_within_ms": 2000 + 2500}))
            files = wait_for(lambda: recordings(d, "*-vm.wav"), msg="voicemail file")
            self.assertEqual(len(files), 1, files)
            ch, rate, width, left, _ = read_wav(files[0])
            self.assertEqual((ch, rate, width, len(left)), (1, 8000, 2, 16000))
            start, end, _ = speech_span(left)
            self.assertEqual(end, 2000)  # talking until the cut
            m = d.metrics()
            self.assertEqual(m["switchboard_voice_recordings_started_total"], 1)
            self.assertEqual(m["switchboard_voice_recordings_finished_total"], 1)
            self.assertEqual(m["switchboard_voice_recordings_failed_total"], 1)
            d.stop()

    def test_answered_queue_call_is_recorded_in_stereo(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            team, agent = ids(d, token)
            lp = free_port()
            r = sipp(d, "register", 202, keys={"expires": 3600, "final": 200}, local_port=lp,
                     extra=["-au", "202", "-ap", "demo-sip-202"])
            ok(self, r)
            # queues ring agents who are online with a registered phone
            st, _, b = d.req("POST", f"/api/v1/agents/{agent['anna']}/presence", {"presence": "online"}, token=token)
            self.assertEqual(st, 200, b)
            anna = sipp_start(d, "agent_uas", 202, keys={"caller": CALLER, "ring_ms": 1000, "pt": 8, "codec": "8 PCMA"},
                              local_port=lp, extra=["-rtp_echo"], timeout=40)
            # the caller streams random audio all along, presses 1 (Sales), talks, hangs up
            ok(self, sipp(d, "caller_queue", 100, keys={"digit": "1", "caller": CALLER, "wait_ms": 6000,
                                                          "audio": LOOP}))
            ok(self, anna.wait())
            c = last_call(d, token)
            self.assertEqual((c["status"], c["agent_id"]), ("answered", agent["anna"]))
            talk_ms = ms(c["ended_at"]) - ms(c["answered_at"])
            self.assertGreater(talk_ms, 3000)
            files = wait_for(lambda: recordings(d), msg="call recording")
            self.assertEqual(len(files), 1, files)
            self.assertFalse(files[0].endswith("-vm.wav"))
            self.assertTrue(os.path.basename(files[0]).startswith(str(ms(c["offered_at"])) + "-"))
            ch, rate, width, left, right = read_wav(files[0])
            self.assertEqual((ch, rate, width), (2, 8000, 2))
            self.assertAlmostEqual(len(left) / 8.0, talk_ms, delta=400)
            # both channels carry audio nearly all along
            for side in (left, right):
                v = voiced_frames(side)
                self.assertGreater(sum(v), 0.85 * len(v), (sum(v), len(v)))
            # aligned: a piece of the caller's audio (left) is in the echo (right) within 60 ms
            mid = len(left) // 2
            needle = left[mid:mid + 80].tobytes()
            window = right[mid - 800:mid + 800].tobytes()
            at = window.find(needle)
            while at > 0 and at % 2 == 1:  # samples start at even offsets
                at = window.find(needle, at + 1)
            self.assertGreaterEqual(at, 0, "the caller's audio is not in the agent's channel")
            lag_ms = ((at // 2) - 800) / 8.0
            self.assertLess(abs(lag_ms), 60, lag_ms)
            m = d.metrics()
            self.assertEqual(m["switchboard_voice_recordings_started_total"], 1)
            self.assertEqual(m["switchboard_voice_recordings_finished_total"], 1)
            self.assertEqual(m["switchboard_voice_calls_active"], 0)
            d.stop()

    def test_recording_is_configured_per_number_and_queue(self):
        """[sip] record_calls = false, but number 557 says record_calls: true: its answered call is
        recorded, one through DID 100 (no setting of its own) is not; then Sales' queue says
        record_calls: false, which wins over the number's."""
        with Daemon(config_extra=SIP.replace("[sip]\n", "[sip]\nrecord_calls = false\n")) as d:
            token = d.token(DEMO_ADMIN[0])
            team, agent = ids(d, token)
            st, _, b = d.req("POST", "/api/v1/numbers", {"name": "Запись", "number": "557", "record_calls": True,
                                                         "entry": {"action": "queue", "team_id": team["Sales"]}},
                             token=token)
            self.assertEqual(st, 201, b)
            self.assertIs(b["number"]["record_calls"], True)
            st, _, bad = d.req("POST", "/api/v1/numbers", {"name": "x", "number": "558", "record_calls": "yes",
                                                           "entry": {"action": "hangup"}}, token=token)
            self.assertEqual(st, 422, bad)
            self.assertIn("field 'record_calls'", bad["error"]["message"])
            lp = free_port()
            ok(self, sipp(d, "register", 202, keys={"expires": 3600, "final": 200}, local_port=lp,
                          extra=["-au", "202", "-ap", "demo-sip-202"]))
            st, _, b = d.req("POST", f"/api/v1/agents/{agent['anna']}/presence", {"presence": "online"}, token=token)
            self.assertEqual(st, 200, b)
            anna = sipp_start(d, "agent_uas", 202, keys={"caller": CALLER, "ring_ms": 300, "pt": 8, "codec": "8 PCMA"},
                              local_port=lp, calls=3, extra=["-rtp_echo"], timeout=60)
            ok(self, sipp(d, "caller_queue", 557, keys={"digit": "5", "caller": CALLER, "wait_ms": 3000,
                                                          "audio": LOOP}))
            first = last_call(d, token)
            self.assertEqual((first["status"], first["did"]), ("answered", "557"))
            self.assertIsNotNone(first["recording_url"])
            ok(self, sipp(d, "caller_queue", 100, keys={"digit": "1", "caller": CALLER, "wait_ms": 3000,
                                                          "audio": LOOP}))
            second = last_call(d, token, 2)
            self.assertEqual((second["status"], second["did"], second["recording_url"]), ("answered", "100", None))
            self.assertEqual(d.metrics()["switchboard_voice_recordings_started_total"], 1)
            st, _, sales = d.req("GET", f"/api/v1/teams/{team['Sales']}", token=token)
            routing = dict(sales["team"].get("routing") or {})
            routing["call_queue"] = dict(routing.get("call_queue") or {}, record_calls=False)
            st, _, b = d.req("PATCH", f"/api/v1/teams/{team['Sales']}", {"routing": routing}, token=token)
            self.assertEqual(st, 200, b)
            st, _, bad = d.req("PATCH", f"/api/v1/teams/{team['Sales']}",
                               {"routing": dict(routing, call_queue={"record_calls": 1})}, token=token)
            self.assertEqual(st, 422, bad)
            self.assertIn("routing.call_queue.record_calls", bad["error"]["message"])
            ok(self, sipp(d, "caller_queue", 557, keys={"digit": "5", "caller": CALLER, "wait_ms": 3000,
                                                          "audio": LOOP}))
            ok(self, anna.wait())
            third = last_call(d, token, 3)
            self.assertEqual((third["status"], third["did"], third["recording_url"]), ("answered", "557", None))
            self.assertEqual(d.metrics()["switchboard_voice_recordings_started_total"], 1)
            d.stop()


if __name__ == "__main__":
    unittest.main()
