"""baresip - a real SIP user agent (Debian's baresip-core, 1.0.0) for the voice tests,
driven over its ctrl_tcp module (Python 3.11 stdlib only).

    Baresip(account, name="baresip", audio_source="ausine,440", timeout=10)
        Context manager. Writes a private config dir (tempfile) with:
          config:   sip_listen 127.0.0.1:<free port> (UDP only), no sound card: the
                    audio source is ausine (a sine tone) or aufile (a WAV), and no
                    audio player module is loaded, so received audio is decoded and
                    dropped; G.711 only; modules menu (the dial/accept/hangup/sndcode
                    commands) and ctrl_tcp on 127.0.0.1:<free port>.
          accounts: the one account line, e.g.
                    "<sip:202@127.0.0.1:5070;transport=udp>;auth_pass=demo-sip-202;regint=600"
                    or, for a customer that does not register,
                    "<sip:5551234@127.0.0.1;transport=udp>;regint=0".
        then runs `baresip -f DIR` (stdout/stderr to DIR/baresip.log) and connects to
        ctrl_tcp. __exit__ (and close()) always kills the process and removes DIR
        (SB_KEEP_TMP=1 keeps it).
        Attributes: .dir .sip_port .ctrl_port .proc .events (every event so far)
        Methods:    .command(cmd, params=None, timeout=None) -> response dict
                        ({"response": true, "ok": bool, "data": str, "token": str});
                        raises AssertionError when no response came in time
                    .wait_event(type, timeout=None, **match) -> the first event (dict)
                        with that "type" (REGISTER_OK, REGISTER_FAIL, CALL_INCOMING,
                        CALL_ESTABLISHED, CALL_CLOSED, CALL_RINGING, ...) whose other
                        fields equal match; events already received count too, each
                        is returned once. Raises AssertionError (with the log) on timeout.
                    .dial(uri) .accept() .hangup() .send_dtmf(digits) (menu's
                        "sndcode": RFC 4733 telephone-events on the current call)
                    .rtp_stats() -> {"tx": n, "rx": n}: RTP packets the current call
                        sent and received (parsed from menu's "audio_debug")
                    .log() -> str   baresip's output so far
                    .close()

ctrl_tcp (baresip 1.0.0, modules/ctrl_tcp): netstring-framed JSON both ways
("<len>:<json>,"). Commands {"command": "dial", "params": "sip:...", "token": "t1"}
are menu's long commands; responses carry "response": true and the token; events
carry "event": true, "class", "type", "accountaor", "param" and, for calls,
"direction", "peeruri", "id"."""
import itertools
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from sbtest import free_port

BARESIP = os.environ.get("SB_BARESIP", "baresip")
MODULE_PATH = os.environ.get("SB_BARESIP_MODULES", "/usr/lib/baresip/modules")


def available():
    """True when the baresip binary and the modules these tests need are installed."""
    if shutil.which(BARESIP) is None:
        return False
    return all(os.path.exists(os.path.join(MODULE_PATH, m + ".so"))
               for m in ("ctrl_tcp", "menu", "g711", "ausine", "aufile", "account"))


CONFIG = """\
# written by tests/integration/baresip.py
poll_method		epoll
sip_listen		127.0.0.1:{sip_port}
call_local_timeout	60
call_max_calls		4
audio_source		{audio_source}
ausrc_srate		48000		# ausine makes 48 kHz stereo only; resampled to the codec
ausrc_channels		2
audio_buffer		20-160
audio_level		no
ausrc_format		s16
auplay_format		s16
auenc_format		s16
audec_format		s16
rtp_tos			0
rtp_ports		{rtp_lo}-{rtp_hi}
rtcp_mux		no
jitter_buffer_delay	1-10
rtp_stats		no
net_interface		127.0.0.1
module_path		{module_path}
module			g711.so
module			ausine.so
module			aufile.so
module_tmp		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:{ctrl_port}
menu_bell		no
ringback_disabled	yes
statmode_default	off
"""


def _rtp_range():
    """An even port range of 20 free UDP ports for baresip's RTP/RTCP."""
    for _ in range(200):
        lo = random.randrange(20000, 30000, 2)
        socks = []
        try:
            for p in range(lo, lo + 20):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return lo, lo + 19
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free RTP port range")


class Baresip:
    START_TIMEOUT = 15

    def __init__(self, account, name="baresip", audio_source="ausine,440", timeout=10):
        self.account = account
        self.name = name
        self.timeout = timeout
        self.dir = tempfile.mkdtemp(prefix=f"sb-{name}-")
        self.sip_port = free_port()
        self.ctrl_port = free_port()
        rtp_lo, rtp_hi = _rtp_range()
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write(CONFIG.format(sip_port=self.sip_port, ctrl_port=self.ctrl_port, audio_source=audio_source,
                                  rtp_lo=rtp_lo, rtp_hi=rtp_hi, module_path=MODULE_PATH))
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write("# the account is added with uanew once ctrl_tcp is connected\n")
        with open(os.path.join(self.dir, "contacts"), "w") as f:
            f.write("")
        self.log_path = os.path.join(self.dir, "baresip.log")
        self.proc = None
        self.sock = None
        self.reader = None
        self.cond = threading.Condition()
        self.events = []       # every event, in order
        self._unseen = []      # events not yet returned by wait_event
        self.responses = {}    # token -> response
        self._tokens = itertools.count(1)
        self._closed = False

    # -- lifecycle
    def start(self):
        log = open(self.log_path, "ab")
        try:
            # -f: our config dir; -v: info logs help when a test fails
            self.proc = subprocess.Popen([BARESIP, "-f", self.dir, "-v"], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        finally:
            log.close()
        deadline = time.monotonic() + self.START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"baresip exited with {self.proc.returncode} at start:\n" + self.log()[-4000:])
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("baresip's ctrl_tcp did not listen in time:\n" + self.log()[-4000:])
                time.sleep(0.05)
        self.sock.settimeout(None)
        self.reader = threading.Thread(target=self._read_loop, name=f"{self.name}-ctrl", daemon=True)
        self.reader.start()
        # The account is created (and registers) only now: an account from the accounts
        # file registers at start-up, before ctrl_tcp has a client to tell about it.
        r = self.command("uanew", self.account.strip())
        if not r.get("ok"):
            raise AssertionError(f"baresip: uanew failed: {r}\n" + self.log()[-3000:])
        return self

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        """Kills baresip (always), closes the control socket, removes the config dir."""
        if self._closed:
            return
        self._closed = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        if self.reader is not None:
            self.reader.join(timeout=2)
        if os.environ.get("SB_KEEP_TMP"):
            sys.stderr.write(f"[baresip] kept {self.dir}\n")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- ctrl_tcp
    def _read_loop(self):
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.cond.notify_all()
                return
            buf += chunk
            while True:
                colon = buf.find(b":")
                if colon < 0:
                    break
                try:
                    n = int(buf[:colon])
                except ValueError:  # out of step: drop what we have
                    buf = b""
                    break
                if len(buf) < colon + 1 + n + 1:
                    break
                payload = buf[colon + 1:colon + 1 + n]
                buf = buf[colon + 1 + n + 1:]  # the trailing ","
                try:
                    msg = json.loads(payload.decode("utf-8", "replace"))
                except ValueError:
                    continue
                with self.cond:
                    if msg.get("response"):
                        self.responses[msg.get("token")] = msg
                    elif msg.get("event"):
                        self.events.append(msg)
                        self._unseen.append(msg)
                    self.cond.notify_all()

    def command(self, cmd, params=None, timeout=None):
        token = f"t{next(self._tokens)}"
        msg = {"command": cmd, "token": token}
        if params is not None:
            msg["params"] = params
        data = json.dumps(msg).encode()
        self.sock.sendall(str(len(data)).encode() + b":" + data + b",")
        deadline = time.monotonic() + (timeout or self.timeout)
        with self.cond:
            while token not in self.responses:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"baresip: no response to {msg} in time:\n" + self.log()[-3000:])
                self.cond.wait(left)
            return self.responses.pop(token)

    def wait_event(self, etype, timeout=None, **match):
        deadline = time.monotonic() + (timeout or self.timeout)
        with self.cond:
            while True:
                for i, ev in enumerate(self._unseen):
                    if ev.get("type") == etype and all(ev.get(k) == v for k, v in match.items()):
                        del self._unseen[i]
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(e.get("type"), e.get("param")) for e in self.events]
                    raise AssertionError(f"baresip ({self.name}): no {etype} event {match or ''} in time; "
                                         f"events: {seen}\n" + self.log()[-3000:])
                self.cond.wait(left)

    def types(self):
        with self.cond:
            return [e.get("type") for e in self.events]

    # -- menu's commands
    def _ok(self, cmd, params=None):
        r = self.command(cmd, params)
        if not r.get("ok"):
            raise AssertionError(f"baresip: {cmd} {params or ''} failed: {r}\n" + self.log()[-3000:])
        return r

    def dial(self, uri):
        return self._ok("dial", uri)

    def accept(self):
        return self._ok("accept")

    def hangup(self):
        return self._ok("hangup")

    def send_dtmf(self, digits):
        return self._ok("sndcode", digits)

    def rtp_stats(self):
        """The current call's RTP counters from menu's "audio_debug":
        {"tx": packets sent, "rx": packets received from the peer}."""
        text = self._ok("audio_debug").get("data", "")
        tx = re.search(r"TX: packets=(\d+)", text)
        rx = re.search(r"rcvd=(\d+)", text)
        return {"tx": int(tx.group(1)) if tx else 0, "rx": int(rx.group(1)) if rx else 0}
