"""sbtest - harness for Switchboard's integration tests (Python 3.11 stdlib only).

Stable API (other test files, e.g. test_crash.py, import it):

    Daemon(config_extra="", data_dir=None, seed=True, env=None)
        Context manager. Writes an INI into a fresh temp dir ([server] listen =
        127.0.0.1:0 and data_dir, [log] level = warn, [demo] seed = true, then
        config_extra verbatim: extra sections/keys; a section named again is
        merged by inih), runs `SB_BINARY serve --config FILE` with stdout and
        stderr appended to files, waits (30 s) for "switchboard listening on
        http://HOST:PORT".
        Attributes: .port .base_url .host .data_dir .tmp .config_path .proc
                    .api_secret (from the demo seed output of the first start;
                    kept across restarts) .stdout_path .stderr_path
        Methods:    .cli(*args, input=None, check=False) -> CompletedProcess
                        (runs SB_BINARY *args --data DATA_DIR, text mode)
                    .token(email) -> str (a new bearer token via the CLI)
                    .stop(timeout=60)  SIGTERM, wait, assert exit code 0
                    .kill()            SIGKILL, wait (no exit-code check)
                    .restart()         stop() if running, start again on the
                                       same data dir (the port may change)
                    .start()           start (after stop/kill)
                    .running() -> bool
                    .log() -> str      stdout + stderr so far
                    .check_sanitizers() raises AssertionError on sanitizer
                                       reports in the log
                    .req(...)          = Client(self).req(...), one request
                    .client(keepalive=True) -> Client
                    .login(email, password) -> Client (cookie session; .csrf)
                    .stream(token) -> WebSocket on /api/v1/stream (hello read)
                    .metrics() -> dict name -> float (unlabelled samples)
                    .wait_healthy(timeout=30)
        __exit__ stops the daemon (if still running) and fails on a non-zero
        exit code or on "AddressSanitizer" / "LeakSanitizer" /
        "runtime error:" in its output.

    Client(daemon_or_port, keepalive=False, timeout=30)
        .req(method, path, body=None, headers=None, token=None, raw=None)
            -> (status, headers, json_or_text)
        body: dict/list sent as JSON; raw: bytes sent verbatim (Content-Type
        application/json unless headers say otherwise). token: Bearer token.
        headers: a case-insensitive dict (multi-valued headers joined by ", ",
        every value via headers.get_all(name)). json_or_text: parsed JSON when
        the response is application/json, else text. Cookies the server sets
        are kept and sent back (.cookies); .csrf is the sb_csrf cookie.
    req(daemon, method, path, ...)  one-shot module-level form
    sign(secret, raw_bytes) -> "sha256=<hex>"
    inbound(d, payload, channel=1, secret=None, headers=None) -> req result
        (posts the JSON, signed, to /api/v1/channels/{channel}/inbound)
    WebSocket.connect(port, path, headers=None, timeout=10) -> WebSocket
        raises WSHandshakeError(status, headers, body) when not 101.
        .send_text(s) .send_json(obj) .ping(payload=b"")
        .recv_json(timeout=10) next text message as JSON (answers pings;
            raises WSClosed on a close frame, TimeoutError on timeout)
        .recv_until(pred, timeout=10) first message (JSON) with pred(msg)
            true; skipped messages are kept in .backlog and searched first
        .close(code=1000)
    CallbackServer(secret=None, statuses=None, retry_after=None)
        Context manager; http.server on 127.0.0.1:0 in a thread. .url,
        .requests (list of dicts: method, path, headers, body (bytes), json,
        sig_ok, attempt, status), .set_statuses([503, 200]) answers in order
        (then .default_status, 200), .retry_after (str|None) is sent with
        non-2xx answers, .wait_requests(n, timeout=10) -> list.
    wait_for(fn, timeout=10, interval=0.05, msg=None) -> fn()'s truthy value
        or raise AssertionError.
    event_pred(type, **match)   predicate for stream events (data fields;
        "a__b" matches data["a"]["b"]), for WebSocket.recv_until.
    chat_session(d, channel=2, **fields) -> /chat/session JSON
    chat_ws(d, token, channel=2) -> visitor WebSocket on /chat/ws
    raw_request(target, bytes, timeout=10) -> (status|None, headers, body)
    read_response(sock, timeout=10), wait_closed(sock, timeout=10)
    quote_path(path)  percent-encodes non-ASCII (Client/WebSocket do it)
    Voice ([sip] listen = 127.0.0.1:0 in config_extra): Daemon.sip_port.
    free_port() -> a port free for both UDP and TCP on 127.0.0.1.
    sipp(d, scenario, service, keys=None, calls=1, transport="u1", extra=(),
         timeout=60, local_port=None) -> CompletedProcess: runs SIPp (sip-tester) with
        tests/sip/<scenario>.xml against d.sip_port as [service], keys as
        -key NAME VALUE and {{NAME}} in the file ([caller] defaults to 5551234), on free local SIP and
        media ports; .returncode 0 means every call passed the scenario.
    sipp_start(same arguments) -> SippProcess: the same run in the background (an agent's
        phone as UAS); .wait(timeout=None) -> CompletedProcess, .kill().
    sip_send(port, data, transport="udp", timeout=5) -> bytes: one raw
        request (UDP datagram or TCP write), the first response ("" when
        none arrived in time).
    SB_TIMEOUT_SCALE (env, default 1) multiplies start/stop timeouts.
    SB_KEEP_TMP=1 (env) keeps daemons' temp dirs (config, logs, data).
"""
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

__all__ = [
    "free_port", "sipp", "sipp_start", "sip_send",
    "Daemon", "Client", "req", "sign", "inbound", "WebSocket", "WSHandshakeError", "WSClosed",
    "CallbackServer", "wait_for", "binary", "DEMO_ADMIN", "DEMO_ANNA", "DEMO_BORIS",
]

DEMO_ADMIN = ("admin@demo.switchboard", "demo-admin-1")
DEMO_ANNA = ("anna@demo.switchboard", "demo-anna-1")
DEMO_BORIS = ("boris@demo.switchboard", "demo-boris-1")

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "ThreadSanitizer")


def binary():
    b = os.environ.get("SB_BINARY")
    if not b:
        src = os.environ.get("SB_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
        for cand in ("build-it", "build"):
            p = os.path.join(src, cand, "switchboard")
            if os.path.exists(p):
                return os.path.abspath(p)
        raise RuntimeError("set SB_BINARY to the switchboard binary")
    return os.path.abspath(b)


def wait_for(fn, timeout=10, interval=0.05, msg=None):
    """Polls fn() until it returns a truthy value (returned) or timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last_exc = None
        except (AssertionError, OSError, http.client.HTTPException) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError((msg or "condition not met") + f" within {timeout} s" + detail)
        time.sleep(interval)


def sign(secret, raw):
    if isinstance(secret, str):
        secret = secret.encode()
    if isinstance(raw, str):
        raw = raw.encode()
    return "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- HTTP client

class Headers(dict):
    """Case-insensitive response headers; keeps every value for get_all()."""

    def __init__(self, pairs):
        super().__init__()
        self.pairs = [(k, v) for k, v in pairs]
        for k, v in self.pairs:
            lk = k.lower()
            if dict.__contains__(self, lk):
                dict.__setitem__(self, lk, dict.__getitem__(self, lk) + ", " + v)
            else:
                dict.__setitem__(self, lk, v)

    def __getitem__(self, k):
        return dict.__getitem__(self, k.lower())

    def __contains__(self, k):
        return dict.__contains__(self, k.lower())

    def get(self, k, default=None):
        return dict.get(self, k.lower(), default)

    def get_all(self, k):
        return [v for n, v in self.pairs if n.lower() == k.lower()]


def _port_of(target):
    if isinstance(target, int):
        return "127.0.0.1", target
    return target.host, target.port


def _decode_body(headers, data):
    ctype = headers.get("content-type", "")
    if "json" in ctype and data:
        try:
            return json.loads(data.decode("utf-8"))
        except ValueError:
            pass
    return data.decode("utf-8", "replace")


class Client:
    def __init__(self, target, keepalive=False, timeout=30):
        self.target = target
        self.keepalive = keepalive
        self.timeout = timeout
        self.conn = None
        self.cookies = {}

    @property
    def csrf(self):
        return self.cookies.get("sb_csrf")

    def _new_conn(self):
        host, port = _port_of(self.target)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _store_cookies(self, headers):
        for sc in headers.get_all("set-cookie"):
            first = sc.split(";", 1)[0]
            if "=" not in first:
                continue
            name, value = first.split("=", 1)
            name = name.strip()
            if value == "" or re.search(r"(?i)max-age=0\b", sc):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def req(self, method, path, body=None, headers=None, token=None, raw=None):
        hdrs = {}
        data = None
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
            hdrs["Content-Type"] = "application/json"
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if not self.keepalive:
            hdrs["Connection"] = "close"
        for k, v in (headers or {}).items():
            for existing in [e for e in hdrs if e.lower() == k.lower()]:
                del hdrs[existing]
            if v is not None:
                hdrs[k] = v
        if data is not None and not any(k.lower() == "content-length" for k in hdrs):
            hdrs["Content-Length"] = str(len(data))
        for attempt in (0, 1):
            reused = self.conn is not None
            if self.conn is None:
                self.conn = self._new_conn()
            try:
                self.conn.request(method, quote_path(path), body=data, headers=hdrs)
                resp = self.conn.getresponse()
                payload = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                self.close()
                if reused and attempt == 0:
                    continue  # a kept-alive connection the server had closed
                raise
            headers_out = Headers(resp.getheaders())
            self._store_cookies(headers_out)
            status = resp.status
            if not self.keepalive or resp.will_close:
                self.close()
            return status, headers_out, _decode_body(headers_out, payload)
        raise AssertionError("unreachable")


def quote_path(path):
    """Percent-encodes the non-ASCII characters of a path (UTF-8), so tests
    can write "/api/v1/tickets?q=заказ"."""
    return "".join(c if ord(c) < 128 else urllib.parse.quote(c) for c in path)


def req(target, method, path, body=None, headers=None, token=None, raw=None):
    return Client(target).req(method, path, body=body, headers=headers, token=token, raw=raw)


def inbound(d, payload, channel=1, secret=None, headers=None):
    raw = json.dumps(payload).encode()
    h = {"X-Switchboard-Signature": sign(secret if secret is not None else d.api_secret, raw)}
    h.update(headers or {})
    return req(d, "POST", f"/api/v1/channels/{channel}/inbound", raw=raw, headers=h)


# ---------------------------------------------------------------- WebSocket

class WSHandshakeError(Exception):
    def __init__(self, status, headers, body):
        super().__init__(f"websocket handshake answered {status}: {str(body)[:200]!r}")
        self.status = status
        self.headers = headers
        self.body = body


class WSClosed(Exception):
    def __init__(self, code=None, reason=""):
        super().__init__(f"websocket closed code={code} reason={reason!r}")
        self.code = code
        self.reason = reason


class WebSocket:
    def __init__(self, sock, leftover=b""):
        self.sock = sock
        self.buf = bytearray(leftover)
        self.backlog = []
        self.closed = False
        self.close_code = None
        self.lock = threading.Lock()

    @classmethod
    def connect(cls, target, path, headers=None, timeout=10):
        host, port = _port_of(target)
        sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {quote_path(path)} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            sock.close()
            raise WSHandshakeError(0, Headers([]), data.decode("latin-1"))
        hdrs = Headers([tuple(x.strip() for x in ln.split(":", 1)) for ln in lines[1:] if ":" in ln])
        if status != 101:
            body = rest
            n = int(hdrs.get("content-length", "0") or 0)
            while len(body) < n:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                body += chunk
            sock.close()
            text = body.decode("utf-8", "replace")
            try:
                text = json.loads(text)
            except ValueError:
                pass
            raise WSHandshakeError(status, hdrs, text)
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        if hdrs.get("sec-websocket-accept", "").encode() != want:
            sock.close()
            raise AssertionError("bad Sec-WebSocket-Accept")
        ws = cls(sock, rest)
        ws.handshake_headers = hdrs
        return ws

    # -- sending (client frames are masked)
    def _send_frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        with self.lock:
            self.sock.sendall(head + mask + masked)

    def send_text(self, text):
        self._send_frame(0x1, text.encode() if isinstance(text, str) else text)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def ping(self, payload=b""):
        self._send_frame(0x9, payload)

    # -- receiving
    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("websocket receive timed out")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("websocket receive timed out")
            if not chunk:
                self.closed = True
                raise WSClosed(None, "connection closed without a close frame")
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _read_frame(self, deadline):
        # Consume a frame only when whole, so a timeout never loses data.
        b0, b1 = self._peek(2, deadline)
        n = b1 & 0x7F
        hl = 2
        if n == 126:
            hl = 4
        elif n == 127:
            hl = 10
        if b1 & 0x80:
            hl += 4
        head = self._peek(hl, deadline)
        if n == 126:
            n = struct.unpack("!H", head[2:4])[0]
        elif n == 127:
            n = struct.unpack("!Q", head[2:10])[0]
        self._peek(hl + n, deadline)
        frame = self._read_exact(hl + n, deadline)
        payload = frame[hl:]
        if b1 & 0x80:
            mask = frame[hl - 4:hl]
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def _peek(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("websocket receive timed out")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("websocket receive timed out")
            if not chunk:
                self.closed = True
                raise WSClosed(None, "connection closed without a close frame")
            self.buf += chunk
        return bytes(self.buf[:n])

    def recv(self, timeout=10):
        """Next data message as (opcode, bytes); answers pings; raises WSClosed."""
        deadline = time.monotonic() + timeout
        parts, opcode = [], None
        while True:
            fin, op, payload = self._read_frame(deadline)
            if op == 0x9:
                self._send_frame(0xA, payload)
                continue
            if op == 0xA:
                continue
            if op == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                reason = payload[2:].decode("utf-8", "replace")
                self.close_code = code
                try:
                    self._send_frame(0x8, payload[:2])
                except OSError:
                    pass
                self.closed = True
                raise WSClosed(code, reason)
            if op in (0x1, 0x2):
                opcode, parts = op, [payload]
            elif op == 0x0:
                parts.append(payload)
            if fin and opcode is not None:
                return opcode, b"".join(parts)

    def recv_json(self, timeout=10):
        if self.backlog:
            return self.backlog.pop(0)
        return self._recv_json_raw(timeout)

    def _recv_json_raw(self, timeout):
        op, data = self.recv(timeout)
        return json.loads(data.decode("utf-8"))

    def recv_until(self, pred, timeout=10):
        for i, m in enumerate(self.backlog):
            if pred(m):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching websocket message; got: " + json.dumps(self.backlog)[:2000])
            m = self._recv_json_raw(left)
            if pred(m):
                return m
            self.backlog.append(m)

    def close(self, code=1000):
        if self.sock is None:
            return
        try:
            if not self.closed:
                self._send_frame(0x8, struct.pack("!H", code))
                deadline = time.monotonic() + 2
                try:
                    while True:
                        self._read_frame(deadline)
                except (TimeoutError, WSClosed, OSError):
                    pass
        except OSError:
            pass
        finally:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
            self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def event_pred(etype, **match):
    """Predicate for stream events: type == etype and data[...] values match.

    Keys use '__' for nesting: event_pred("message.updated", id=5,
    delivery_status="sent") or ticket__number=3 (data["ticket"]["number"])."""
    def pred(m):
        if m.get("type") != etype:
            return False
        data = m.get("data") or {}
        for k, v in match.items():
            cur = data
            for part in k.split("__"):
                if not isinstance(cur, dict) or part not in cur:
                    return False
                cur = cur[part]
            if cur != v:
                return False
        return True
    return pred


# ---------------------------------------------------------------- callback server

class CallbackServer:
    def __init__(self, secret=None, statuses=None, retry_after=None, default_status=200):
        self.secret = secret
        self.statuses = list(statuses or [])
        self.retry_after = retry_after
        self.default_status = default_status
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                outer._record(self, body)

            do_PUT = do_POST

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set_statuses(self, statuses):
        with self.lock:
            self.statuses = list(statuses)

    def _record(self, h, body):
        with self.lock:
            status = self.statuses.pop(0) if self.statuses else self.default_status
            sig = h.headers.get("X-Switchboard-Signature")
            sig_ok = None
            if self.secret is not None:
                sig_ok = sig is not None and hmac.compare_digest(sig, sign(self.secret, body))
            try:
                parsed = json.loads(body.decode("utf-8"))
            except ValueError:
                parsed = None
            self.requests.append({
                "method": h.command, "path": h.path, "headers": dict(h.headers.items()),
                "body": body, "json": parsed, "sig_ok": sig_ok,
                "attempt": h.headers.get("X-Switchboard-Attempt"), "status": status,
                "time": time.monotonic(),
            })
        out = json.dumps({"ok": 200 <= status < 300}).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(out)))
        if self.retry_after is not None and not (200 <= status < 300):
            h.send_header("Retry-After", str(self.retry_after))
        h.end_headers()
        h.wfile.write(out)

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def wait_requests(self, n, timeout=10):
        return wait_for(lambda: (lambda r: r if len(r) >= n else None)(self.snapshot()), timeout=timeout,
                        msg=f"callback server to receive {n} request(s)")

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


# ---------------------------------------------------------------- daemon

def _scale():
    """Timeouts grow under sanitizers / loaded machines (SB_TIMEOUT_SCALE)."""
    try:
        return max(1.0, float(os.environ.get("SB_TIMEOUT_SCALE", "1")))
    except ValueError:
        return 1.0


class Daemon:
    START_TIMEOUT = 30

    def __init__(self, config_extra="", data_dir=None, seed=True, env=None, wrapper=None):
        self.binary = binary()
        self.wrapper = list(wrapper or [])  # e.g. ["strace", "-f", ...] before the binary
        self.tmp = tempfile.mkdtemp(prefix="sbtest-")
        self.data_dir = os.path.abspath(data_dir) if data_dir else os.path.join(self.tmp, "data")
        self.config_path = os.path.join(self.tmp, "switchboard.ini")
        self.stdout_path = os.path.join(self.tmp, "stdout.log")
        self.stderr_path = os.path.join(self.tmp, "stderr.log")
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self.port = None
        self.host = "127.0.0.1"
        self.api_secret = None
        self.starts = 0
        self._out_offset = 0
        with open(self.config_path, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:0\n")
            f.write(f"data_dir = {self.data_dir}\n")
            f.write("[log]\nlevel = warn\n")
            f.write("[demo]\nseed = %s\n" % ("true" if seed else "false"))
            if config_extra:
                f.write("\n" + config_extra.strip() + "\n")

    # -- lifecycle
    @property
    def base_url(self):
        return f"http://{self.host}:{self.port}"

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        assert not self.running(), "daemon already running"
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        try:
            self._out_offset = os.path.getsize(self.stdout_path)
            self.proc = subprocess.Popen([*self.wrapper, self.binary, "serve", "--config", self.config_path], stdout=out,
                                         stderr=err, stdin=subprocess.DEVNULL, env=self.env)
        finally:
            out.close()
            err.close()
        self.starts += 1
        deadline = time.monotonic() + self.START_TIMEOUT * _scale()
        pat = re.compile(r"switchboard listening on http://([^\s:]+|\[[^\]]+\]):(\d+)")
        while True:
            with open(self.stdout_path, "rb") as f:
                f.seek(self._out_offset)
                text = f.read().decode("utf-8", "replace")
            m = pat.search(text)
            if m:
                self.host = m.group(1)
                self.port = int(m.group(2))
                sp = re.search(r"switchboard sip on (\S+):(\d+)", text)
                self.sip_port = int(sp.group(2)) if sp else None
                s = re.search(r"API channel (\d+) secret: ([0-9a-f]+)", text)
                if s and self.api_secret is None:
                    self.api_secret = s.group(2)
                    self.api_channel_id = int(s.group(1))
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"switchboard exited with {self.proc.returncode} before listening:\n"
                                     + self.log()[-4000:])
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("switchboard did not print its listening line in time:\n" + self.log()[-4000:])
            time.sleep(0.02)

    def stop(self, timeout=60):
        """SIGTERM, wait, assert exit code 0 (and no sanitizer report)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout * _scale())
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("switchboard did not exit within %d s of SIGTERM:\n%s"
                                     % (timeout, self.log()[-4000:]))
        rc = self.proc.returncode
        self.check_sanitizers()
        if rc != 0:
            raise AssertionError(f"switchboard exited with {rc} after SIGTERM:\n" + self.log()[-4000:])

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        if self.running():
            self.stop()
        return self.start()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self._cleanup(failed=True)
            raise

    def __exit__(self, exc_type, exc, tb):
        failed = exc_type is not None
        try:
            if self.running():
                self.stop()
            else:
                self.check_sanitizers()
        except AssertionError:
            if not failed:
                self._cleanup(failed=True)
                raise
        self._cleanup(failed=failed)
        return False

    def _cleanup(self, failed):
        if self.running():
            self.kill()
        if os.environ.get("SB_KEEP_TMP"):
            sys.stderr.write(f"[sbtest] kept {self.tmp}\n")
            return
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- logs
    def log(self):
        parts = []
        for p in (self.stdout_path, self.stderr_path):
            try:
                with open(p, "rb") as f:
                    parts.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "\n".join(parts)

    def check_sanitizers(self):
        text = self.log()
        for marker in SANITIZER_MARKERS:
            i = text.find(marker)
            if i >= 0:
                raise AssertionError(f"sanitizer report ({marker}) in the daemon's output:\n"
                                     + text[max(0, i - 2000):i + 6000])

    # -- CLI
    def cli(self, *args, input=None, check=False, timeout=60):
        cmd = [self.binary, *[str(a) for a in args], "--data", self.data_dir]
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, env=self.env,
                           timeout=timeout * _scale())
        for marker in SANITIZER_MARKERS:
            if marker in p.stderr:
                raise AssertionError(f"sanitizer report in `{' '.join(cmd)}`:\n{p.stderr[-6000:]}")
        if check and p.returncode != 0:
            raise AssertionError(f"`{' '.join(cmd)}` exited {p.returncode}: {p.stderr}")
        return p

    def token(self, email):
        p = self.cli("token", "create", "--agent", email, check=True)
        tok = p.stdout.strip().splitlines()[-1].strip()
        assert tok.startswith("sbt_"), tok
        return tok

    def add_api_channel(self, name="Test API", callback_url=None):
        """Creates an API channel with the CLI; returns its JSON (id, secret...)."""
        args = ["channel", "add", "api", "--name", name]
        if callback_url:
            args += ["--callback-url", callback_url]
        p = self.cli(*args, check=True)
        return json.loads(p.stdout.strip().splitlines()[-1])

    # -- HTTP conveniences
    def client(self, keepalive=True):
        return Client(self, keepalive=keepalive)

    def req(self, method, path, body=None, headers=None, token=None, raw=None):
        return Client(self).req(method, path, body=body, headers=headers, token=token, raw=raw)

    def login(self, email, password):
        c = Client(self, keepalive=False)
        st, h, b = c.req("POST", "/api/v1/auth/login", {"email": email, "password": password})
        assert st == 200, (st, b)
        assert c.csrf == b["csrf_token"], (c.cookies, b)
        return c

    def stream(self, token, timeout=10):
        ws = WebSocket.connect(self, "/api/v1/stream?access_token=" + urllib.parse.quote(token), timeout=timeout)
        hello = ws.recv_json(timeout=timeout * _scale())
        assert hello.get("type") == "hello", hello
        return ws

    def metrics(self):
        st, h, text = self.req("GET", "/metrics")
        assert st == 200, st
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
        return out

    def wait_healthy(self, timeout=30):
        return wait_for(lambda: self.req("GET", "/healthz")[0] == 200, timeout=timeout * _scale(),
                        msg="/healthz to answer 200")


# ---------------------------------------------------------------- web chat helpers

def chat_session(d, channel=2, **fields):
    """POST /chat/session; returns its JSON (token, visitor_id, messages)."""
    body = {"channel_id": channel}
    body.update(fields)
    st, h, b = d.req("POST", "/chat/session", body)
    assert st == 200, (st, b)
    return b


def chat_ws(d, token, channel=2, timeout=10):
    """A visitor WebSocket on /chat/ws."""
    return WebSocket.connect(d, f"/chat/ws?channel={channel}&token={urllib.parse.quote(token)}", timeout=timeout)


# ---------------------------------------------------------------- raw sockets

def read_response(sock, timeout=10):
    """Reads one HTTP/1.1 response from a raw socket.

    Returns (status, headers, body_bytes) or (None, None, b"") when the peer
    closed without answering. Raises TimeoutError if nothing complete came."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\r\n\r\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no response head")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no response head")
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            if not data:
                return None, None, b""
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = Headers([tuple(x.strip() for x in ln.split(":", 1)) for ln in lines[1:] if ":" in ln])
    n = int(hdrs.get("content-length", "0") or 0)
    while len(body) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("response body incomplete")
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, hdrs, body[:n] if n else body


def raw_request(target, data, timeout=10):
    """Sends raw bytes on a new connection and reads one response (see read_response)."""
    host, port = _port_of(target)
    with socket.create_connection((host, port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_response(s, timeout)


def wait_closed(sock, timeout=10):
    """True when the peer closes (EOF/RST) within timeout; data is discarded."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True


# ---------------------------------------------------------------- SIP peers

# Ports for SIPp (its SIP port, and RTP/RTCP at -mp .. -mp+3) come from below the kernel's
# ephemeral range (32768-60999), where nothing else binds by chance: each test process starts
# at its own offset (by pid) and never hands a block out twice, and every port of a block is
# checked free. Two tests running at once (ctest -j2) then do not race for the same port.
_PORT_LO, _PORT_HI, _BLOCK = 20000, 32000, 4
_next_block = None


def _block_free(base):
    for port in range(base, base + _BLOCK):
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
            finally:
                s.close()
    return True


def free_port():
    """A port free on 127.0.0.1 for both UDP and TCP, with the next three free too (SIPp's
    media takes four), from a block no other test process is handed."""
    global _next_block
    nblocks = (_PORT_HI - _PORT_LO) // _BLOCK
    if _next_block is None:
        _next_block = (os.getpid() * 97) % nblocks
    for _ in range(nblocks):
        base = _PORT_LO + _next_block * _BLOCK
        _next_block = (_next_block + 1) % nblocks
        if _block_free(base):
            return base
    return _ephemeral_port()


def _ephemeral_port():
    """A port number free on 127.0.0.1 for both UDP and TCP (at this moment)."""
    for _ in range(100):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


def _sipp_cmd(d, scenario, service, keys, calls, transport, extra, timeout, local_port, cwd):
    src = os.environ.get("SB_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
    xml = os.path.join(src, "tests", "sip", scenario + ".xml")
    all_keys = {"caller": "5551234"}
    all_keys.update(keys or {})
    # {{name}} in a scenario is replaced by keys[name] (SIPp takes no
    # keyword where it expects a response code)
    with open(xml, encoding="iso-8859-1") as f:
        text = f.read()
    for k, v in all_keys.items():
        text = text.replace("{{" + k + "}}", str(v))
    path = os.path.join(cwd, scenario + ".xml")
    with open(path, "w", encoding="iso-8859-1") as f:
        f.write(text)
    cmd = ["sipp", "-sf", path, f"127.0.0.1:{d.sip_port}", "-s", str(service), "-i", "127.0.0.1",
           "-p", str(local_port or free_port()), "-mp", str(free_port()), "-m", str(calls), "-t", transport, "-nostdin",
           "-timeout", str(timeout), "-timeout_error", "-max_recv_loops", "1000"]
    for k, v in all_keys.items():
        cmd += ["-key", k, str(v)]
    return cmd + list(extra)


def sipp(d, scenario, service, keys=None, calls=1, transport="u1", extra=(), timeout=60, local_port=None):
    """Runs SIPp with tests/sip/<scenario>.xml against the daemon's SIP port."""
    with tempfile.TemporaryDirectory(prefix="sipp-") as cwd:
        cmd = _sipp_cmd(d, scenario, service, keys, calls, transport, extra, timeout, local_port, cwd)
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout * 2 * _scale(),
                           stdin=subprocess.DEVNULL)
    return r


class HandUac:
    """INVITEs written by hand from one UDP socket on 127.0.0.1, as `user` (an extension,
    or a provider's caller): each gets its final answer (1xx skipped) and an ACK on the
    INVITE's branch. For exact headers and challenges, where SIPp's scenarios are blunt."""

    def __init__(self, d, user):
        self.port = d.sip_port
        self.user = user
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.s.settimeout(5)
        self.local = self.s.getsockname()[1]
        self.cseq = 0

    def close(self):
        self.s.close()

    def _final(self):
        while True:
            data = self.s.recv(65536).decode(errors="replace")
            status = int(data.split(" ", 2)[1])
            if status >= 200:
                return status, data

    def invite(self, number="100", header=None, value=None, resend=False, call_id=None):
        """Returns (status, response text, call_id, the answer to the INVITE sent again
        before the ACK when `resend`, else None); `header: value` is added when given."""
        self.cseq += 1
        call_id = call_id or uuid.uuid4().hex
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        uri = f"sip:{number}@127.0.0.1:{self.port}"
        sdp = ("v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")
        head = (f"INVITE {uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.local};branch={branch}\r\n"
                f"From: <sip:{self.user}@127.0.0.1>;tag=hu{self.cseq}\r\n"
                f"To: <{uri}>\r\nCall-ID: {call_id}\r\nCSeq: {self.cseq} INVITE\r\n"
                f"Contact: <sip:{self.user}@127.0.0.1:{self.local}>\r\nMax-Forwards: 70\r\n")
        if header:
            head += f"{header}: {value}\r\n"
        msg = (head + f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n" + sdp).encode()
        self.s.sendto(msg, ("127.0.0.1", self.port))
        status, data = self._final()
        again = None
        if resend:
            self.s.sendto(msg, ("127.0.0.1", self.port))
            again = self._final()[1]
        to = re.search(r"^To: (.*)$", data, re.M | re.I).group(1).strip()
        ack = (f"ACK {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{self.local};branch={branch}\r\n"
               f"From: <sip:{self.user}@127.0.0.1>;tag=hu{self.cseq}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
               f"CSeq: {self.cseq} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        self.s.sendto(ack.encode(), ("127.0.0.1", self.port))
        return status, data, call_id, again

    def digest(self, challenge, user, password, number="100", nonce=None, nc=1):
        """The Authorization value answering `challenge` (a WWW- or Proxy-Authenticate),
        with nonce count `nc`."""
        def md5(t):
            return hashlib.md5(t.encode()).hexdigest()
        realm = re.search(r'realm="([^"]*)"', challenge).group(1)
        nonce = nonce or re.search(r'nonce="([^"]*)"', challenge).group(1)
        uri = f"sip:{number}@127.0.0.1:{self.port}"
        cnonce, nc = uuid.uuid4().hex[:8], f"{nc:08x}"
        ha1 = md5(f"{user}:{realm}:{password}")
        resp = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{md5('INVITE:' + uri)}")
        return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
                f'response="{resp}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"')


class SippProcess:
    """A SIPp run in the background (an agent's phone as UAS): .wait() ->
    CompletedProcess like sipp()'s; .kill() ends it (also on wait's timeout)."""

    def __init__(self, d, scenario, service, keys, calls, transport, extra, timeout, local_port):
        self._dir = tempfile.TemporaryDirectory(prefix="sipp-")
        self.timeout = timeout
        self.cmd = _sipp_cmd(d, scenario, service, keys, calls, transport, extra, timeout, local_port, self._dir.name)
        self.proc = subprocess.Popen(self.cmd, cwd=self._dir.name, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)

    def wait(self, timeout=None):
        try:
            out, err = self.proc.communicate(timeout=timeout or self.timeout * 2 * _scale())
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        self._dir.cleanup()
        return subprocess.CompletedProcess(self.cmd, self.proc.returncode, out, err)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        return self.wait()


def sipp_start(d, scenario, service, keys=None, calls=1, transport="u1", extra=(), timeout=60, local_port=None):
    """Starts SIPp with tests/sip/<scenario>.xml in the background (see SippProcess)."""
    return SippProcess(d, scenario, service, keys, calls, transport, extra, timeout, local_port)


def sip_send(port, data, transport="udp", timeout=5):
    """Sends one raw SIP request; returns the first response (b"" if none)."""
    if isinstance(data, str):
        data = data.encode()
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(timeout)
    try:
        if transport == "udp":
            s.bind(("127.0.0.1", 0))
            s.sendto(data, ("127.0.0.1", port))
        else:
            s.connect(("127.0.0.1", port))
            s.sendall(data)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return b""
            except OSError:
                return b""
            if not chunk:
                return b""
            # skip provisional answers and keep-alive CRLFs
            if chunk.strip() and not re.match(rb"SIP/2.0 1\d\d", chunk):
                return chunk
        return b""
    finally:
        s.close()


def pcma_audio(tag):
    """A raw PCMA file for SIPp's rtp_stream ("audio" key; any bytes are audio), removed
    when the test process exits. `tag` keeps test modules' files apart."""
    path = os.path.join(tempfile.gettempdir(), f"sb-alaw-{tag}-{os.getpid()}.raw")
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * 64)
    import atexit
    atexit.register(lambda: os.path.exists(path) and os.unlink(path))
    return path


def assert_sipp_ok(test, r, d=None):
    """A SIPp run (sipp() or SippProcess.wait()) passed; else its output, and the
    daemon's log tail when `d` is given."""
    log = ("\n--- daemon ---\n" + d.log()[-3000:]) if d is not None else ""
    test.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:] + log)


def calls_of(d, token=None):
    """GET /api/v1/calls as the demo admin (or `token`): newest first."""
    st, _, body = d.req("GET", "/api/v1/calls", token=token or d.token(DEMO_ADMIN[0]))
    assert st == 200, body
    return body["calls"]
