"""In-band DTMF against SIPp callers on loopback: a caller whose SDP offers G.711 without
telephone-event streams audio made with sox (silence, 100 ms of 697 + 1209 Hz: the key 1,
silence) into the demo's DID 100; the daemon hears the key in the audio and the IVR sends the
call to the Sales queue, like an RFC 4733 '1' (test_voice_calls.py), in PCMA and in PCMU. A
caller that offered telephone-event and streams the same tone gets no in-band detection (we
rely on its events: an in-band '1' would count it twice). A caller without telephone-event
streaming pink noise and speech-like sweeps presses nothing: the menu times out."""
import os
import subprocess
import tempfile
import unittest

from sbtest import DEMO_ADMIN, Daemon, assert_sipp_ok as ok, sipp, wait_for

SIP = "[sip]\nlisten = 127.0.0.1:0\nno_media_seconds = 5\n"
CALLER = "79990001122"



def sox(path, law, *synth):
    """Raw G.711 (law: "a-law" or "u-law"), 8 kHz mono, from sox's synth effect."""
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", law, "-t", "raw", path, "synth"] + list(synth),
                   check=True, capture_output=True)
    with open(path, "rb") as f:
        return f.read()


def teams(d, token):
    st, _, body = d.req("GET", "/api/v1/teams", token=token)
    assert st == 200, body
    return {t["name"]: t["id"] for t in body["teams"]}


def calls(d, token, n):
    def get():
        st, _, body = d.req("GET", "/api/v1/calls", token=token)
        assert st == 200, body
        return len(body["calls"]) >= n and body["calls"]
    return wait_for(get, timeout=20, msg=f"{n} calls logged")


class VoiceInbandTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sb-inband-")
        cls.files = {}
        for law in ("a-law", "u-law"):
            # 1 s of silence, the key 1 for 100 ms at about -12 dBm0 per tone, 8 s of silence
            quiet = sox(os.path.join(cls.tmp.name, "quiet.raw"), law, "1", "sine", "0", "gain", "-120")
            tone = sox(os.path.join(cls.tmp.name, "tone.raw"), law, "0.1", "sine", "697", "sine", "1209",
                       "gain", "-6")
            path = os.path.join(cls.tmp.name, f"key1-{law}.raw")
            with open(path, "wb") as f:
                f.write(quiet + tone + quiet * 8)
            cls.files[law] = path
        # 3 s of pink noise, 3 s of three harmonics gliding together (a voice's pitch
        # moving from 150 to 600 Hz), 3 s of a sine sweeping over all eight DTMF tones
        noise = sox(os.path.join(cls.tmp.name, "n.raw"), "a-law", "3", "pinknoise", "gain", "-12")
        voice = sox(os.path.join(cls.tmp.name, "v.raw"), "a-law", "3", "sine", "150-600", "sine", "300-1200",
                    "sine", "450-1800", "gain", "-6")
        sweep = sox(os.path.join(cls.tmp.name, "s.raw"), "a-law", "3", "sine", "600-1700", "gain", "-10")
        cls.files["noise"] = os.path.join(cls.tmp.name, "noise.raw")
        with open(cls.files["noise"], "wb") as f:
            f.write(noise + voice + sweep)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def caller(self, d, audio, pt=8, te=False, wait_ms=6000, loops=1):
        keys = {"caller": CALLER, "audio": audio, "pt": pt, "codec": "PCMA" if pt == 8 else "PCMU",
                "formats": f"{pt} 96" if te else str(pt),
                "te": "a=rtpmap:96 telephone-event/8000" if te else "a=ptime:20",
                "wait_ms": wait_ms, "loops": loops}
        ok(self, sipp(d, "caller_inband", 100, keys=keys, timeout=60))

    def test_tones_make_a_key_without_telephone_event(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            team = teams(d, token)
            # PCMA, no telephone-event: the tone (1 s after the answer) is the key 1 -> Sales
            # (after the 2 s the menu waits for a second digit of an extension); BYE at 6 s
            self.caller(d, self.files["a-law"])
            c = calls(d, token, 1)[0]
            self.assertEqual((c["ivr_path"], c["queue_team_id"], c["status"], c["hangup_by"]),
                             ("1", team["Sales"], "abandoned", "caller"), c)
            m = d.metrics()
            self.assertEqual(m["switchboard_voice_dtmf_inband_total"], 1)
            self.assertEqual(m["switchboard_voice_dtmf_digits_total"], 1)
            # the same in PCMU
            self.caller(d, self.files["u-law"], pt=0)
            c = calls(d, token, 2)[0]
            self.assertEqual((c["ivr_path"], c["queue_team_id"]), ("1", team["Sales"]), c)
            self.assertEqual(d.metrics()["switchboard_voice_dtmf_inband_total"], 2)
            # telephone-event offered: the tone in the audio is not listened for
            self.caller(d, self.files["a-law"], te=True)
            c = calls(d, token, 3)[0]
            self.assertEqual((c["ivr_path"], c["queue_team_id"], c["status"]), ("", None, "abandoned"), c)
            m = d.metrics()
            self.assertEqual(m["switchboard_voice_dtmf_inband_total"], 2)
            self.assertEqual(m["switchboard_voice_dtmf_digits_total"], 2)
            self.assertGreater(m["switchboard_voice_rtp_packets_received_total"], 600)
            d.stop()

    def test_noise_and_voice_press_nothing(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            team = teams(d, token)
            # the 7.5 s menu prompt, its 5 s timeout, then the number's operator: Support
            self.caller(d, self.files["noise"], wait_ms=16000, loops=-1)
            c = calls(d, token, 1)[0]
            self.assertEqual((c["ivr_path"], c["queue_team_id"], c["status"]), ("t", team["Support"], "abandoned"), c)
            m = d.metrics()
            self.assertEqual(m["switchboard_voice_dtmf_inband_total"], 0)
            self.assertEqual(m["switchboard_voice_dtmf_digits_total"], 0)
            self.assertGreater(m["switchboard_voice_rtp_packets_received_total"], 600)
            d.stop()


if __name__ == "__main__":
    unittest.main()
