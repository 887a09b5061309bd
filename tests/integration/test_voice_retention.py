"""Recordings retention: [sip] recordings_keep_days and voicemail_keep_days (0 = forever).

A real voicemail is left through SIPp (a number whose entry is voicemail), so it has its
WAV file, its call row and its message with the recording attached on the caller's
ticket. With the daemon stopped, its row is backdated 40 days and more call rows are
seeded in the SQLite file beside files copied from it:

* an old and a recent call recording, an old voicemail (status voicemail) and an old
  missed call whose file voicemail mode made (`-vm.wav`: a voicemail by its file);
* an old call whose file is also named by a recent call (the file must stay, the old
  row is still marked);
* an old call whose file is already gone (marked all the same);
* an old call alone in its month's directory (2020-02): once its file goes, the empty
  directory goes too, while the current month's directory stays even when emptied (a
  recording may still be started in it).

Then the daemon runs with:
1. both settings 0 (forever): no sweep, every file stays, every recording is served;
2. recordings_keep_days = 30: the old call recordings go, voicemail stays;
3. voicemail_keep_days = 7 as well: the old voicemails go, and the voicemail message's
   attachment on the ticket says it was deleted by retention.
A deleted recording answers 410 with a JSON error; the call log says
recording_deleted_by = "retention" with no recording_url; the counters on /metrics and
the event log count what went; the log names no file."""
import glob
import os
import shutil
import sqlite3
import tempfile
import time
import unittest

from sbtest import DEMO_ADMIN, Daemon, sipp, wait_for

SIP = ("[log]\nlevel = info\n[sip]\nlisten = 127.0.0.1:0\nno_media_seconds = 15\n"
       "voicemail_silence_seconds = 2\nvoicemail_max_seconds = 60\n")
CALLER = "79991239901"
DAY_MS = 86400 * 1000
AUDIO = os.path.join(tempfile.gettempdir(), f"sb-alaw-ret-{os.getpid()}.raw")


def setUpModule():
    with open(AUDIO, "wb") as f:  # 2 s of loud PCMA for SIPp's rtp_stream
        f.write(bytes(b for b in range(256) if b & 0x70 >= 0x40) * 250)


def tearDownModule():
    os.unlink(AUDIO)


def get(d, token, path, status=200):
    st, _, body = d.req("GET", path, token=token)
    assert st == status, (path, st, body)
    return body


def set_keep(d, recordings, voicemail):
    """Rewrites the [sip] keep days at the end of the config (inih merges sections)."""
    with open(d.config_path) as f:
        text = f.read().split("\n;retention\n")[0]
    with open(d.config_path, "w") as f:
        f.write(text + f"\n;retention\n[sip]\nrecordings_keep_days = {recordings}\n"
                       f"voicemail_keep_days = {voicemail}\n")


def start_and_sweep(test, d, recordings, voicemail, deleted):
    """Starts with these keep days; once the start's sweep has run, checks the counters
    (calls, voicemails) and that nothing failed."""
    set_keep(d, recordings, voicemail)
    d.start()
    wait_for(lambda: d.metrics()["switchboard_voice_retention_sweeps_total"] >= 1, timeout=20,
             msg="a retention sweep")
    m = d.metrics()
    test.assertEqual((m["switchboard_voice_recordings_deleted_total"],
                      m["switchboard_voice_voicemails_deleted_total"],
                      m["switchboard_voice_retention_failures_total"]), deleted + (0,), m)


class VoiceRetentionTest(unittest.TestCase):
    def test_retention(self):
        with Daemon(config_extra=SIP) as d:
            token = d.token(DEMO_ADMIN[0])
            teams = {t["name"]: t["id"] for t in get(d, token, "/api/v1/teams")["teams"]}
            st, _, num = d.req("POST", "/api/v1/numbers", {
                "name": "Messages", "number": "106", "language": "en",
                "entry": {"action": "voicemail", "team_id": teams["Support"]}}, token=token)
            self.assertEqual(st, 201, num)
            r = sipp(d, "caller_voicemail", 106, keys={
                "caller": CALLER, "digit": "5", "digit_ms": 500, "talk_after_ms": 3000,
                "audio": AUDIO, "bye_within_ms": 2000 + 2000 + 2500})
            self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
            vm = wait_for(lambda: [c for c in get(d, token, "/api/v1/calls")["calls"]
                                   if c["ticket_number"] and c["recording_url"]], timeout=20,
                          msg="voicemail logged on a ticket")[0]
            self.assertEqual(vm["status"], "voicemail")
            ticket = vm["ticket_number"]

            def attachment():
                msgs = get(d, token, f"/api/v1/tickets/{ticket}")["messages"]
                found = [a for m in msgs for a in (m.get("attachments") or [])
                         if a.get("url") == vm["recording_url"]]
                self.assertEqual(len(found), 1, msgs)
                return found[0]

            self.assertNotIn("deleted_by", attachment())
            files = glob.glob(os.path.join(d.data_dir, "recordings", "*", "*-vm.wav"))
            self.assertEqual(len(files), 1, files)
            vm_file = files[0]
            d.stop()

            # ---- seed, with the daemon stopped ----
            now = int(time.time() * 1000)
            old_dir = os.path.join(d.data_dir, "recordings", "2020-01")
            os.makedirs(old_dir)
            paths = {}
            for name in ("call_old", "call_new", "vm_old", "vm_file_old", "shared"):
                suffix = "-vm" if name.startswith("vm") else ""
                paths[name] = f"recordings/2020-01/{name}{suffix}.wav"
                shutil.copyfile(vm_file, os.path.join(d.data_dir, paths[name]))
            paths["gone"] = "recordings/2020-01/gone.wav"  # no file
            feb_dir = os.path.join(d.data_dir, "recordings", "2020-02")
            os.makedirs(feb_dir)
            paths["call_feb"] = "recordings/2020-02/call_feb.wav"
            shutil.copyfile(vm_file, os.path.join(d.data_dir, paths["call_feb"]))
            rows = [  # name, status, days ago, path
                ("call_old", "answered", 100, paths["call_old"]),
                ("call_new", "answered", 1, paths["call_new"]),
                ("vm_old", "voicemail", 10, paths["vm_old"]),
                ("vm_file_old", "missed", 10, paths["vm_file_old"]),
                ("shared_old", "answered", 100, paths["shared"]),
                ("shared_new", "answered", 2, paths["shared"]),
                ("gone", "answered", 100, paths["gone"]),
                ("call_feb", "answered", 90, paths["call_feb"]),
                ("vm_new", "voicemail", 3, paths["vm_old"].replace("vm_old", "vm_new")),
            ]
            shutil.copyfile(vm_file, os.path.join(d.data_dir, rows[-1][3]))
            db = sqlite3.connect(os.path.join(d.data_dir, "switchboard.db"))
            db.execute("UPDATE call SET offered_at = offered_at - ?1, answered_at = answered_at - ?1, "
                       "ended_at = ended_at - ?1 WHERE id = ?2", (40 * DAY_MS, vm["id"]))
            ids = {"vm_real": vm["id"]}
            for name, status, days, path in rows:
                at = now - days * DAY_MS
                cur = db.execute(
                    "INSERT INTO call (direction, from_number, to_number, status, offered_at, answered_at, "
                    "ended_at, created_at, recording, recording_ms) VALUES ('in', '79991239902', '106', ?, ?, ?, "
                    "?, ?, ?, 2000)", (status, at - 60000, at - 50000, at, at, path))
                ids[name] = cur.lastrowid
            db.commit()
            db.close()
            files = {name: os.path.join(d.data_dir, p) for name, _, _, p in rows}
            files["vm_real"] = vm_file

            def exists():
                return {name for name, p in files.items() if os.path.exists(p)}

            everything = set(files) - {"gone"}
            self.assertEqual(exists(), everything)

            def recording(name):
                return d.req("GET", f"/api/v1/calls/{ids[name]}/recording", token=token,
                             headers={"Range": "bytes=0-3"})

            # ---- 1: forever (the defaults) ----
            d.start()
            m = d.metrics()
            self.assertEqual(m["switchboard_voice_retention_sweeps_total"], 0)
            self.assertEqual(exists(), everything)
            for name in ("vm_real", "call_old", "vm_old"):
                st, _, body = recording(name)
                self.assertEqual((st, body), (206, "RIFF"), name)
            self.assertNotIn("retention", d.log())
            d.stop()

            # ---- 2: call recordings 30 days, voicemail forever ----
            start_and_sweep(self, d, 30, 0, (4, 0))  # call_old, shared_old, gone, call_feb
            self.assertEqual(exists(), everything - {"call_old", "call_feb"})  # the shared file stays
            self.assertFalse(os.path.exists(feb_dir))  # emptied: removed
            self.assertTrue(os.path.isdir(old_dir))  # still has files
            self.assertIn("month_dirs_removed=1", d.log())
            st, h, body = recording("call_old")
            self.assertEqual(st, 410, body)
            self.assertIn("json", h.get("content-type"))
            self.assertEqual(body["error"]["code"], "recording_deleted", body)
            self.assertIn("deleted by retention", body["error"]["message"])
            for name in ("shared_old", "gone"):
                self.assertEqual(recording(name)[0], 410, name)
            for name in ("call_new", "shared_new", "vm_old", "vm_real"):
                self.assertEqual(recording(name)[0], 206, name)
            c = get(d, token, f"/api/v1/calls/{ids['call_old']}")["call"]
            self.assertEqual(c["recording_deleted_by"], "retention")
            self.assertIsNone(c["recording_url"])
            self.assertTrue(c["recording_deleted_at"].endswith("Z"), c)
            self.assertEqual(c["recording_ms"], 2000)
            c = get(d, token, f"/api/v1/calls/{ids['call_new']}")["call"]
            self.assertEqual((c["recording_deleted_by"], c["recording_deleted_at"]), (None, None))
            self.assertIsNotNone(c["recording_url"])
            listed = {c["id"]: c for c in get(d, token, "/api/v1/calls?limit=200")["calls"]}
            self.assertEqual(listed[ids["shared_old"]]["recording_deleted_by"], "retention")
            self.assertNotIn("deleted_by", attachment())
            d.stop()

            # ---- 3: voicemail 7 days too ----
            # calls: done already; voicemails: vm_real, vm_old, vm_file_old
            start_and_sweep(self, d, 30, 7, (0, 3))
            # (shared_old names shared_new's file: it is still there)
            self.assertEqual(exists(), {"call_new", "shared_old", "shared_new", "vm_new"})
            # vm_real's directory is this month's: emptied, and kept for recordings to come
            self.assertEqual(os.listdir(os.path.dirname(vm_file)), [])
            for name in ("vm_real", "vm_old", "vm_file_old"):
                self.assertEqual(recording(name)[0], 410, name)
            for name in ("call_new", "shared_new", "vm_new"):
                self.assertEqual(recording(name)[0], 206, name)
            a = attachment()
            self.assertEqual(a["deleted_by"], "retention", a)
            self.assertTrue(a["deleted_at"].endswith("Z"), a)
            self.assertNotIn("size", a)
            # the log counts, it names no file nor number
            log = d.log()
            self.assertIn("recordings deleted calls=0 voicemails=3", log)
            for p in list(paths.values()) + [os.path.basename(vm_file), CALLER]:
                self.assertNotIn(os.path.basename(p), log.split("retention", 1)[1])
            d.stop()

            db = sqlite3.connect(os.path.join(d.data_dir, "switchboard.db"))
            events = db.execute("SELECT data FROM event WHERE type = 'recordings.deleted' ORDER BY id").fetchall()
            db.close()
            self.assertEqual(len(events), 2, events)


if __name__ == "__main__":
    unittest.main()
