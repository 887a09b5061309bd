"""Nothing is answered before it is on disk. Commits write the WAL without
waiting for the disk and a separate sync thread fdatasync()s it before the
loop answers (src/store/sqlite.c). A kill -9 cannot tell a flushed WAL from
one still in the page cache, so this test watches the system calls instead:
the daemon runs under strace, and for every inbound 200 it checks that an
fdatasync() of the WAL file began after the WAL's last write before that
response and ended before the response was written."""
import os
import re
import shutil
import signal
import unittest
import uuid

from sbtest import Daemon, inbound

LINE = re.compile(r"^(\d+)\s+(.*)$")


def parse(path):
    """Yields (index, tid, kind, detail) in the trace's order. A call split by
    strace ("<unfinished ...>" / "resumed>") is reported at both ends with
    kind 'start' / 'end'; a whole line is both."""
    out = []
    with open(path, errors="replace") as f:
        for i, raw in enumerate(f):
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            tid, rest = m.group(1), m.group(2)
            if rest.startswith("<... "):
                call = rest[5:].split(" ", 1)[0]
                out.append((i, tid, "end", call, rest))
            elif rest.endswith("<unfinished ...>"):
                call = rest.split("(", 1)[0]
                out.append((i, tid, "start", call, rest))
            elif "(" in rest:
                call = rest.split("(", 1)[0]
                out.append((i, tid, "start", call, rest))
                out.append((i, tid, "end", call, rest))
    return out


@unittest.skipUnless(shutil.which("strace"), "needs strace")
class DurabilityOrderTest(unittest.TestCase):
    def test_every_answer_follows_a_wal_flush(self):
        tmp_trace = os.path.join("/tmp", f"sb-strace-{uuid.uuid4().hex[:8]}.txt")
        wrapper = ["strace", "-f", "-qq", "-e", "trace=openat,pwrite64,fdatasync,fsync,writev", "-o", tmp_trace]
        answered = 0
        # LeakSanitizer cannot run under ptrace (the sanitizer build's exit would abort).
        asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""), "detect_leaks=0"]))
        d = Daemon(wrapper=wrapper, env={"ASAN_OPTIONS": asan})
        try:
            d.start()
            for i in range(40):
                st, h, b = inbound(d, {"external_id": f"dur-{i}", "from": {"id": f"dur-{i % 3}"},
                                       "text": f"message {i}"})
                self.assertEqual(st, 200, b)
                answered += 1
            # SIGTERM to the daemon itself (strace's child); strace follows it out.
            with open(f"/proc/{d.proc.pid}/task/{d.proc.pid}/children") as f:
                child = int(f.read().split()[0])
            os.kill(child, signal.SIGTERM)
            self.assertEqual(d.proc.wait(timeout=60), 0)
            events = parse(tmp_trace)
        finally:
            if d.proc is not None and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
            shutil.rmtree(d.tmp, ignore_errors=True)
            if os.path.exists(tmp_trace):
                os.unlink(tmp_trace)
        # Descriptors that name the WAL (the store's and the sync thread's).
        wal_fds = set()
        for _, _, kind, call, rest in events:
            if call == "openat" and kind == "end" and "switchboard.db-wal" in rest:
                m = re.search(r"=\s*(\d+)\s*$", rest)
                if m:
                    wal_fds.add(m.group(1))
        self.assertTrue(wal_fds, "the trace shows no WAL file being opened")
        fd_of = re.compile(r"\((\d+)")

        def on_wal(rest, tid, pending):
            m = fd_of.search(rest)
            fd = m.group(1) if m else pending.get(tid)
            return fd in wal_fds

        last_wal_write = -1    # index of the end of the latest WAL pwrite
        flushed_upto = -1      # latest WAL write index covered by a finished fdatasync
        sync_started = {}      # tid -> last_wal_write when its fdatasync began
        pending_fd = {}        # tid -> fd of a call split by strace
        checked = 0
        for idx, tid, kind, call, rest in events:
            if kind == "start":
                m = fd_of.search(rest)
                if m:
                    pending_fd[tid] = m.group(1)
            if call == "pwrite64" and kind == "end" and on_wal(rest, tid, pending_fd):
                last_wal_write = idx
            elif call in ("fdatasync", "fsync"):
                if kind == "start" and on_wal(rest, tid, pending_fd):
                    sync_started[tid] = last_wal_write
                if kind == "end" and tid in sync_started and not rest.rstrip().endswith("= -1"):
                    flushed_upto = max(flushed_upto, sync_started.pop(tid))
            elif call == "writev" and kind == "start" and "HTTP/1.1 200" in rest and "ticket_number" in rest:
                self.assertGreaterEqual(
                    flushed_upto, last_wal_write,
                    f"an inbound 200 was written at trace line {idx + 1} before the WAL write at line "
                    f"{last_wal_write + 1} was flushed")
                checked += 1
        self.assertEqual(checked, answered, "every inbound answer appears in the trace")


if __name__ == "__main__":
    unittest.main()
