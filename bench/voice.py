#!/usr/bin/env python3
"""voice.py - the voice benchmark (bench/voice.sh runs it; see bench/README.md).

SIPp callers dial the demo IVR (DID 100), hear the menu prompt, press 1 and wait in the
Sales queue; SIPp phones of AGENTS agents (all in Sales, registered from one or a few SIPp
UAS instances) ring RING_S seconds, answer, echo the audio (-rtp_echo); the caller talks
TALK_S seconds and hangs up. A ramp of call rates, DURATION seconds each, each on a fresh
daemon (release build) started on a copy of the data dir made by the setup; per rate it
prints the calls placed, failed calls (SIPp's failures plus calls whose call-log row is
missing or not 'answered'), concurrent calls with media, the daemon's CPU (utime+stime
from /proc) per call, its peak RSS (VmHWM), and the SIPp processes' own CPU, which shares
the machine; then a table, a summary and a RESULT line.

Python 3 stdlib only. Environment (voice.sh passes it on):
  BUILD_DIR (build-bench)  RATES ("10 20 30 45 60 80")  DURATION (120; QUICK=1: 15)
  STRATEGY (round_robin, else ring_all)  AGENTS (auto)  PHONES (2)  RING_S (2)  TALK_S (10)
  PROMPT_S (2)  FAIL_PCT (1)  STOP_ON_FAIL (1)  SETTLE (5)  ONE_DAEMON  RECORD  KEEP
  SIPP (sipp)  PHONE_ARGS (extra SIPp options for the phones, e.g. -trace_msg)
"""
import concurrent.futures
import csv
import datetime
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "bench")


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


def env_float(name, default):
    v = os.environ.get(name, "")
    return float(v) if v.strip() else default


QUICK = os.environ.get("QUICK", "") not in ("", "0")
BUILD_DIR = os.environ.get("BUILD_DIR") or "build-bench"
if not os.path.isabs(BUILD_DIR):
    BUILD_DIR = os.path.join(ROOT, BUILD_DIR)
SB_BIN = os.path.join(BUILD_DIR, "switchboard")
PROMPTS = os.path.join(BUILD_DIR, "prompts")
SIPP = os.environ.get("SIPP") or "sipp"
RATES = [float(x) for x in (os.environ.get("RATES") or "10 20 30 45 60 80").split()]
DURATION = env_int("DURATION", 15 if QUICK else 120)
# The Sales queue's strategy, set with PATCH /api/v1/teams/{id} {"routing": {"call_queue":
# {"strategy": ...}}}: round_robin, ring_all, longest_idle, fewest_calls, random. A daemon
# whose queue knows only ring_all (no routing.call_queue yet) refuses the key: then the
# default round_robin falls back to ring_all (said in the output and the RESULT line); a
# strategy named in STRATEGY=... does not fall back.
STRATEGY = os.environ.get("STRATEGY") or "round_robin"
STRATEGY_FALLBACK = not os.environ.get("STRATEGY")
RING_S = env_float("RING_S", 2)
TALK_S = env_float("TALK_S", 10)
PROMPT_S = env_float("PROMPT_S", 2)
# Enough agents to staff every call at the highest rate (+25%): each call holds its agent
# RING_S + TALK_S seconds.
AGENTS = env_int("AGENTS", int(math.ceil(1.25 * max(RATES) * (RING_S + TALK_S))))
PHONES = max(1, env_int("PHONES", 2))
FAIL_PCT = env_float("FAIL_PCT", 1.0)
STOP_ON_FAIL = os.environ.get("STOP_ON_FAIL", "1") not in ("", "0")
SETTLE = env_float("SETTLE", 5)
# Each rate gets a fresh daemon started on a copy of the data dir as it was after the
# setup (agents, extensions; no calls, contacts or tickets), so every rate starts alike.
# ONE_DAEMON=1: one daemon for the whole ramp (the calls' contacts and tickets pile up).
ONE_DAEMON = os.environ.get("ONE_DAEMON", "") not in ("", "0")
# RECORD=0/1 writes [sip] record_calls = false/true; unset: the daemon's default (a daemon
# that predates the key refuses it). Recordings are counted after each rate, then deleted
# (about 320 kB per answered call of 10 s).
RECORD = os.environ.get("RECORD", "")
KEEP = os.environ.get("KEEP", "") not in ("", "0")
EXT_BASE = 30001  # agents' extensions: 5 digits, apart from the demo's 201-203 and the callers
DID = "100"
ADMIN = "admin@demo.switchboard"
TICK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
REFERENCE = "Asterisk 20 app_queue: 30 calls/s at 71% of one core (23.7 ms CPU/call) in this scenario (not run here)"


def log(msg):
    print(msg, flush=True)


def die(msg):
    log("voice.py: " + msg)
    raise SystemExit(1)


# ---------------------------------------------------------------- /proc

def proc_cpu(pid):
    """utime+stime of a process (all its threads), seconds; None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def thread_cpu(pid):
    """{tid: utime+stime seconds} of every thread."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tids:
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(t)] = (int(fields[11]) + int(fields[12])) / TICK
        except (OSError, IndexError, ValueError):
            pass
    return out


def proc_status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0); False when not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def machine_cpu():
    """(busy, total, iowait) jiffies of all CPUs."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    iowait = v[4] if len(v) > 4 else 0
    return sum(v) - v[3] - iowait, sum(v), iowait


def udp_socket_drops(port):
    """The drops counter of the UDP socket bound to 127.0.0.1:port (None if none)."""
    want = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                v = line.split()
                if v[1] == want:
                    return int(v[-1])
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    return None


def sipp_seconds(v):
    """SIPp's "HH:MM:SS" or "HH:MM:SS:uuuuuu" -> seconds."""
    try:
        parts = [float(x) for x in v.split(":")]
    except (AttributeError, ValueError):
        return 0.0
    if len(parts) == 4:
        return parts[0] * 3600 + parts[1] * 60 + parts[2] + parts[3] / 1e6
    if len(parts) == 3:
        return parts[0] * 3600 + parts[1] * 60 + parts[2]
    return 0.0


# ---------------------------------------------------------------- ports

def port_free(port, kinds=(socket.SOCK_DGRAM,)):
    for kind in kinds:
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


_taken = set()


def pick_port(lo, hi, span=1, step=1):
    """A port p in [lo, hi) with p..p+span-1 free on UDP and TCP (SIP) and not handed out
    before. Below 10000: the daemon takes its RTP ports in 10000-60000."""
    for p in range(lo, hi, step):
        rng = range(p, p + span)
        if any(q in _taken for q in rng):
            continue
        if all(port_free(q, (socket.SOCK_DGRAM, socket.SOCK_STREAM)) for q in rng):
            _taken.update(rng)
            return p
    die(f"no free port in {lo}-{hi}")


# ---------------------------------------------------------------- HTTP

class Api:
    def __init__(self, port, token=None, timeout=120):
        self.port = port
        self.token = token
        self.timeout = timeout
        self.conn = None

    def req(self, method, path, body=None):
        hdrs = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                raw = r.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 0:
                    continue
                raise
            if r.will_close:
                self.conn.close()
                self.conn = None
            ctype = r.getheader("Content-Type", "")
            return r.status, (json.loads(raw) if "json" in ctype and raw else raw.decode("utf-8", "replace"))

    def metrics_or_empty(self):
        """metrics(), or {} when the daemon does not answer in time."""
        try:
            return self.metrics()
        except (OSError, http.client.HTTPException):
            self.conn = None
            return {}

    def metrics(self):
        st, text = self.req("GET", "/metrics")
        out = {}
        if st == 200:
            for line in text.splitlines():
                if line and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    try:
                        out[name] = float(value)
                    except ValueError:
                        pass
        return out


def parse_ts(s):
    if not s:
        return None
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()


# ---------------------------------------------------------------- SIPp

def render(name, work, **keys):
    """bench/sip/NAME.xml with {{key}} replaced, written into work/."""
    with open(os.path.join(HERE, "sip", name + ".xml"), encoding="iso-8859-1") as f:
        text = f.read()
    for k, v in keys.items():
        text = text.replace("{{" + k + "}}", str(v))
    left = re.findall(r"\{\{\w+\}\}", text)
    if left:
        die(f"bench/sip/{name}.xml: no value for {left}")
    path = os.path.join(work, name + ".xml")
    with open(path, "w", encoding="iso-8859-1") as f:
        f.write(text)
    return path


def read_stat_csv(path):
    """The last row of a SIPp -trace_stat file as {column: value}."""
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f, delimiter=";") if r]
    except OSError:
        return {}
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1]))


def stat_int(st, key):
    try:
        return int(float(st.get(key, "0") or 0))
    except ValueError:
        return 0


FAIL_KEYS = ["FailedCannotSendMessage(C)", "FailedMaxUDPRetrans(C)", "FailedTcpConnect(C)", "FailedTcpClosed(C)",
             "FailedUnexpectedMessage(C)", "FailedCallRejected(C)", "FailedCmdNotSent(C)",
             "FailedRegexpDoesntMatch(C)", "FailedRegexpShouldntMatch(C)", "FailedRegexpHdrNotFound(C)",
             "FailedOutboundCongestion(C)", "FailedTimeoutOnRecv(C)", "FailedTimeoutOnSend(C)"]


def fail_reasons(st):
    out = []
    for k in FAIL_KEYS:
        n = stat_int(st, k)
        if n:
            out.append(f"{k[6:-3]} {n}")
    return ", ".join(out)


# ---------------------------------------------------------------- the bench

class Bench:
    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="sb-voice.")
        self.procs = []  # every process we started: stopped on exit
        self.daemon = None
        self.phones = []
        self.rows = []
        self.notes = []
        self.log_offset = 0

    # -- processes

    def spawn(self, cmd, name, cwd=None):
        out = open(os.path.join(self.work, name + ".out"), "w")
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=cwd or self.work)
        out.close()
        self.procs.append(p)
        return p

    def cleanup(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if KEEP:
            log(f"voice.py: scratch files kept in {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- daemon

    def write_ini(self):
        self.ini = os.path.join(self.work, "switchboard.ini")
        with open(self.ini, "w") as f:
            f.write(f"""; written by bench/voice.py
[server]
listen = 127.0.0.1:0
data_dir = {self.data}
[log]
level = warn
[limits]
rate_per_ip = 0
rate_per_token = 0
[demo]
seed = true
[trunk]
allow = 127.0.0.1/32
[sip]
listen = 127.0.0.1:0
prompts = {PROMPTS}
""")
            if RECORD:
                f.write(f"record_calls = {'false' if RECORD in ('0', 'false', 'no') else 'true'}\n")

    def start_daemon(self, name):
        """Starts `serve` on self.data (ports chosen by the kernel); output in NAME.out."""
        self.daemon_name = name
        self.log_offset = 0
        self.daemon = self.spawn([SB_BIN, "serve", "--config", self.ini], name)
        out = os.path.join(self.work, name + ".out")
        deadline = time.monotonic() + 120
        http_port = sip_port = None
        while time.monotonic() < deadline:
            with open(out, errors="replace") as f:
                text = f.read()
            m = re.search(r"^switchboard listening on http://[^:]+:(\d+)", text, re.M)
            sp = re.search(r"^switchboard sip on [^:]+:(\d+)", text, re.M)
            if m and sp:
                http_port, sip_port = int(m.group(1)), int(sp.group(1))
                break
            if self.daemon.poll() is not None:
                die("the daemon exited during start:\n" + text[-3000:])
            time.sleep(0.1)
        if http_port is None:
            die("the daemon did not print its HTTP and SIP addresses in 120 s")
        self.pid = self.daemon.pid
        self.http_port, self.sip_port = http_port, sip_port
        self.mon = Api(http_port, timeout=30)
        if not getattr(self, "token", None):
            self.token = subprocess.run([SB_BIN, "token", "create", "--agent", ADMIN, "--config", self.ini, "--data",
                                         self.data], capture_output=True, text=True, check=True).stdout.strip()
        self.api = Api(http_port, self.token)

    def stop_daemon(self, limit=120):
        """SIGTERM; returns (seconds the stop took or None if killed, exit code)."""
        t0 = time.monotonic()
        self.daemon.send_signal(signal.SIGTERM)
        try:
            rc = self.daemon.wait(timeout=limit)
            took = time.monotonic() - t0
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            rc = self.daemon.wait()
            took = None
        return took, rc

    def fresh_daemon(self, tag):
        """A new daemon on a copy of the data dir saved after the setup; phones registered."""
        self.data = os.path.join(self.work, f"data-{tag}")
        shutil.rmtree(self.data, ignore_errors=True)
        shutil.copytree(self.snapshot, self.data)
        self.write_ini()
        self.start_daemon(f"daemon-{tag}")
        self.register(quiet=True)

    def daemon_log_news(self):
        """New warn/error lines of the daemon since the last call."""
        path = os.path.join(self.work, self.daemon_name + ".out")
        with open(path, errors="replace") as f:
            f.seek(self.log_offset)
            text = f.read()
            self.log_offset = f.tell()
        return [ln for ln in text.splitlines() if re.search(r"level=(warn|error|fatal)|AddressSanitizer|Segmentation", ln)]

    # -- agents

    def setup_agents(self):
        st, teams = self.api.req("GET", "/api/v1/teams")
        if st != 200:
            die(f"GET /api/v1/teams: {st} {teams}")
        sales = next((t for t in teams["teams"] if t["name"] == "Sales"), None)
        if sales is None:
            die("the demo has no team 'Sales'")
        self.sales = sales
        self.apply_strategy(sales)

        t0 = time.monotonic()
        exts = [str(EXT_BASE + i) for i in range(AGENTS)]
        local = threading.local()

        def api():
            if not hasattr(local, "api"):
                local.api = Api(self.http_port, self.token)
            return local.api

        def create(ext):
            a = api()
            st, body = a.req("POST", "/api/v1/agents", {
                "email": f"bench-{ext}@bench.switchboard", "name": f"Bench agent {ext}", "role": "agent",
                "password": f"bench-agent-{ext}", "language": "en", "team_ids": [sales["id"]]})
            if st != 201:
                raise RuntimeError(f"POST /api/v1/agents ({ext}): {st} {body}")
            aid = body["agent"]["id"]
            st, body = a.req("POST", f"/api/v1/agents/{aid}/presence", {"presence": "online"})
            if st != 200:
                raise RuntimeError(f"POST /api/v1/agents/{aid}/presence: {st} {body}")
            r = subprocess.run([SB_BIN, "user", "sip-password", f"bench-{ext}@bench.switchboard", "--extension", ext,
                                "--password", f"bench-sip-{ext}", "--config", self.ini, "--data", self.data],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"switchboard user sip-password ({ext}): {r.stderr.strip()}")
            return aid

        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            list(ex.map(create, exts))
        self.exts = exts
        log(f"  {AGENTS} agents created in {time.monotonic() - t0:.0f} s (POST /api/v1/agents, team Sales, presence "
            f"online; `switchboard user sip-password` sets extensions {exts[0]}-{exts[-1]})")
        os.kill(self.pid, signal.SIGHUP)  # the daemon reads the extensions again
        time.sleep(1)

    def apply_strategy(self, team):
        """PATCH the Sales team's routing.call_queue.strategy. A daemon that knows only
        ring_all refuses the key: fine for ring_all, the default falls back to ring_all,
        and any other STRATEGY=... stops the bench."""
        routing = dict(team.get("routing") or {})
        cq = dict(routing.get("call_queue") or {})
        cq["strategy"] = STRATEGY
        routing["call_queue"] = cq
        st, body = self.api.req("PATCH", f"/api/v1/teams/{team['id']}", {"routing": routing})
        if st == 200:
            self.strategy = STRATEGY
            self.strategy_note = f"{STRATEGY} (routing.call_queue.strategy of team Sales)"
            return
        self.strategy = "ring_all"
        why = f"PATCH /api/v1/teams/{team['id']} routing.call_queue answered {st}"
        if STRATEGY == "ring_all":
            self.strategy_note = f"ring_all (the daemon's only strategy: {why})"
        elif STRATEGY_FALLBACK:
            self.strategy_note = f"ring_all: this daemon has no other strategy ({why}), not {STRATEGY}"
            log(f"  strategy {STRATEGY} refused ({why}: {body}); the queue rings all free agents (ring_all)")
        else:
            die(f"this daemon does not take routing.call_queue.strategy={STRATEGY}: {why} {body}")

    def start_phones(self):
        """PHONES SIPp UAS instances; agent i's phone is instance i % PHONES."""
        agent_xml = render("agent", self.work, ring_ms=int(RING_S * 1000), linger_ms=1000)
        self.phone_ports = []
        for k in range(PHONES):
            sip = pick_port(5100, 9000)
            media = pick_port(6000, 9990, span=4, step=4)
            self.phone_ports.append(sip)
            p = self.spawn([SIPP, "-sf", agent_xml, "-i", "127.0.0.1", "-p", str(sip), "-mp", str(media), "-t", "u1",
                            "-rtp_echo", "-nostdin", "-recv_timeout", "60000",
                            # a real phone ignores what it does not expect (e.g. an INVITE
                            # retransmitted after its 200): SIPp would abort the call
                            "-default_behaviors", "all,-abortunexp", "-trace_stat", "-stf",
                            os.path.join(self.work, f"phone{k}.csv"), "-fd", "1", "-trace_err", "-error_file",
                            os.path.join(self.work, f"phone{k}.err")] + os.environ.get("PHONE_ARGS", "").split(),
                           f"phone{k}")
            self.phones.append(p)
        time.sleep(1)
        for k, p in enumerate(self.phones):
            if p.poll() is not None:
                die(f"SIPp phone {k} exited: " + open(os.path.join(self.work, f"phone{k}.out")).read()[-2000:])

    def register(self, quiet=False):
        reg_xml = render("register", self.work)
        inf = os.path.join(self.work, "agents.csv")
        with open(inf, "w") as f:
            f.write("SEQUENTIAL\n")
            for i, ext in enumerate(self.exts):
                f.write(f"{ext};[authentication username={ext} password=bench-sip-{ext}];"
                        f"{self.phone_ports[i % PHONES]}\n")
        t0 = time.monotonic()
        for attempt in range(3):
            port = pick_port(5100, 9000)
            r = subprocess.run([SIPP, "-sf", reg_xml, "-inf", inf, f"127.0.0.1:{self.sip_port}", "-i", "127.0.0.1",
                                "-p", str(port), "-t", "u1", "-m", str(len(self.exts)), "-r", "200", "-l", "100",
                                "-nostdin", "-recv_timeout", "10000", "-timeout", "300", "-timeout_error",
                                "-trace_stat", "-stf", os.path.join(self.work, f"register{attempt}.csv"), "-fd", "5"],
                               cwd=self.work, capture_output=True, text=True)
            regs = int(self.mon.metrics().get("switchboard_voice_registrations", 0))
            if regs >= len(self.exts):
                break
            log(f"  registration pass {attempt + 1}: {regs} of {len(self.exts)} bindings (SIPp exit {r.returncode}); "
                "again")
            time.sleep(2)
        else:
            die(f"only {regs} of {len(self.exts)} agents registered")
        if quiet:
            return
        log(f"  {regs} extensions registered in {time.monotonic() - t0:.0f} s (REGISTER with digest from "
            f"bench/sip/register.xml; Contact: {PHONES} SIPp phone(s) on ports "
            f"{', '.join(map(str, self.phone_ports))})")

    # -- one rate

    def calls_since(self, last_id):
        rows = []
        cursor = None
        while True:
            path = "/api/v1/calls?limit=200" + (f"&cursor={cursor}" if cursor else "")
            st, body = self.api.req("GET", path)
            if st != 200:
                die(f"GET {path}: {st} {body}")
            done = False
            for c in body["calls"]:
                if c["id"] <= last_id:
                    done = True
                    break
                rows.append(c)
            cursor = body.get("next_cursor")
            if done or not cursor:
                return rows

    def last_call_id(self):
        st, body = self.api.req("GET", "/api/v1/calls?limit=1")
        if st != 200:
            die(f"GET /api/v1/calls: {st} {body}")
        return body["calls"][0]["id"] if body["calls"] else 0

    def run_rate(self, idx, rate):
        total = int(round(rate * DURATION))
        prefix = f"7999{idx:02d}0"
        caller_xml = render("caller", self.work, prefix=prefix, prompt_ms=int(PROMPT_S * 1000),
                            hold_talk_ms=int((RING_S + TALK_S) * 1000), audio=self.audio)
        tag = f"r{idx:02d}"
        stat_csv = os.path.join(self.work, f"caller-{tag}.csv")
        ok_log = os.path.join(self.work, f"caller-{tag}.log")
        err_file = os.path.join(self.work, f"caller-{tag}.err")
        sip = pick_port(5100, 9000)
        media = pick_port(6000, 9990, span=4, step=4)
        call_len = PROMPT_S + RING_S + TALK_S
        cmd = [SIPP, "-sf", caller_xml, f"127.0.0.1:{self.sip_port}", "-s", DID, "-i", "127.0.0.1", "-p", str(sip),
               "-mp", str(media), "-t", "u1", "-r", f"{rate:g}", "-rp", "1000", "-m", str(total), "-l", "100000",
               "-nostdin", "-recv_timeout", "30000", "-timeout", str(int(DURATION + call_len + 120)), "-timeout_error",
               "-trace_stat", "-stf", stat_csv, "-fd", "1", "-trace_logs", "-log_file", ok_log,
               "-trace_err", "-error_file", err_file]
        self.caller_cmd = " ".join(os.path.basename(c) if c == caller_xml else c for c in cmd)

        last_id = self.last_call_id()
        m0 = self.mon.metrics()
        phone_st0 = [read_stat_csv(os.path.join(self.work, f"phone{k}.csv")) for k in range(PHONES)]
        hwm_reset = reset_hwm(self.pid)
        d_cpu0, th0 = proc_cpu(self.pid), thread_cpu(self.pid)
        ph_cpu0 = [proc_cpu(p.pid) or 0 for p in self.phones]
        mc0 = machine_cpu()
        self.daemon_log_news()
        t0 = time.monotonic()

        caller = subprocess.Popen(cmd, cwd=self.work, stdout=open(os.path.join(self.work, f"caller-{tag}.out"), "w"),
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(caller)
        sip_drops0 = udp_socket_drops(self.sip_port)
        phone_drops0 = [udp_socket_drops(p) for p in self.phone_ports]
        samples = []  # one dict a second
        rusage = None
        limit = DURATION + call_len + 180
        while True:
            try:
                wpid, status, ru = os.wait4(caller.pid, os.WNOHANG)
            except ChildProcessError:
                wpid, status, ru = caller.pid, 0, None
            if wpid == caller.pid:
                rusage = ru
                caller.returncode = os.waitstatus_to_exitcode(status) if ru is not None else caller.poll()
                break
            if self.daemon.poll() is not None:
                caller.kill()
                break
            if time.monotonic() - t0 > limit:
                log(f"  SIPp caller still running after {limit:.0f} s: stopped")
                caller.kill()
                continue
            tm = time.monotonic()
            m = self.mon.metrics_or_empty()
            metrics_s = time.monotonic() - tm
            cst = read_stat_csv(stat_csv)
            samples.append(dict(t=time.monotonic(), active=m.get("switchboard_voice_calls_active", 0),
                                to_agent=m.get("switchboard_voice_rtp_relayed_to_agent_total", 0),
                                to_caller=m.get("switchboard_voice_rtp_relayed_to_caller_total", 0),
                                sent=m.get("switchboard_voice_rtp_packets_sent_total", 0),
                                received=m.get("switchboard_voice_rtp_packets_received_total", 0),
                                threads=thread_cpu(self.pid), created=stat_int(cst, "TotalCallCreated"),
                                current=stat_int(cst, "CurrentCall"), retrans=stat_int(cst, "Retransmissions(C)"),
                                answer_s=sipp_seconds(cst.get("ResponseTime1(P)", "")), metrics_s=metrics_s,
                                elapsed=sipp_seconds(cst.get("ElapsedTime(C)", ""))))
            time.sleep(1)
        t_callers_done = time.monotonic()
        crashed = self.daemon.poll() is not None

        # The callers are gone: every call must end in the daemon too.
        stuck = 0
        if not crashed:
            deadline = time.monotonic() + 30
            while True:
                stuck = int(self.mon.metrics_or_empty().get("switchboard_voice_calls_active", -1))
                if stuck == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            time.sleep(1)  # the last call-log rows
        t1 = time.monotonic()
        d_cpu1 = proc_cpu(self.pid) if not crashed else None
        th1 = thread_cpu(self.pid) if not crashed else {}
        ph_cpu1 = [proc_cpu(p.pid) or 0 for p in self.phones]
        mc1 = machine_cpu()
        hwm = proc_status_kb(self.pid, "VmHWM") if not crashed else None
        rss = proc_status_kb(self.pid, "VmRSS") if not crashed else None
        m1 = self.mon.metrics_or_empty() if not crashed else {}
        news = self.daemon_log_news()
        rec_files = rec_bytes = 0
        rec_dir = os.path.join(self.data, "recordings")
        for dirpath, _, files in os.walk(rec_dir):
            for name in files:
                try:
                    rec_bytes += os.path.getsize(os.path.join(dirpath, name))
                    rec_files += 1
                except OSError:
                    pass
        # ~320 kB a call: counted, then deleted (every call has ended, so the daemon closed them)
        shutil.rmtree(rec_dir, ignore_errors=True)
        phone_st1 = [read_stat_csv(os.path.join(self.work, f"phone{k}.csv")) for k in range(PHONES)]
        sip_drops1 = udp_socket_drops(self.sip_port)
        phone_drops1 = [udp_socket_drops(p) for p in self.phone_ports]
        sip_drops = (sip_drops1 - sip_drops0) if sip_drops0 is not None and sip_drops1 is not None else None
        phone_drops = sum((b or 0) - (a or 0) for a, b in zip(phone_drops0, phone_drops1))
        with open(os.path.join(self.work, f"samples-{tag}.csv"), "w") as f:
            f.write("t_s,calls_active,relayed_to_agent,relayed_to_caller,daemon_cpu_s,busiest_thread_cpu_s,"
                    "sipp_created,sipp_current,sipp_retrans,sipp_invite_answer_s,metrics_http_s\n")
            for smp in samples:
                th = smp["threads"]
                f.write(f"{smp['t'] - t0:.1f},{smp['active']:.0f},{smp['to_agent']:.0f},{smp['to_caller']:.0f},"
                        f"{sum(th.values()):.2f},{max(th.values()) if th else 0:.2f},{smp['created']},"
                        f"{smp['current']},{smp['retrans']},{smp['answer_s']:.3f},{smp['metrics_s']:.3f}\n")

        # ---- outcome of every call
        cst = read_stat_csv(stat_csv)
        created = stat_int(cst, "TotalCallCreated")
        sipp_failed = stat_int(cst, "FailedCall(C)")
        ok_numbers = set()
        if os.path.exists(ok_log):
            with open(ok_log, errors="replace") as f:
                for line in f:
                    mm = re.search(r"\bok (\d+)", line)
                    if mm:
                        ok_numbers.add(int(mm.group(1)))
        rows = self.calls_since(last_id) if not crashed else []
        by_number = {}
        status_counts = {}
        foreign = 0
        for c in rows:
            frm = str(c.get("from") or "")
            if not frm.startswith(prefix):
                foreign += 1
                continue
            try:
                n = int(frm[len(prefix):])
            except ValueError:
                foreign += 1
                continue
            by_number[n] = c
            status_counts[c["status"]] = status_counts.get(c["status"], 0) + 1
        good = 0
        log_bad = 0
        missing = 0
        answered_sipp_failed = 0
        for n in range(1, created + 1):
            c = by_number.get(n)
            answered = c is not None and c["status"] == "answered"
            if c is None:
                missing += 1
            elif not answered:
                log_bad += 1
            if answered and n in ok_numbers:
                good += 1
            elif answered:
                answered_sipp_failed += 1
        failed = created - good
        fail_pct = 100.0 * failed / created if created else 100.0

        # ---- offered rate, queue wait, concurrency with media
        # the rate SIPp placed the calls at: its elapsed time when the last call was created
        placed_s = next((smp["elapsed"] for smp in samples if smp["created"] >= total), None)
        if placed_s is None:
            placed_s = sipp_seconds(cst.get("ElapsedTime(C)", ""))
        # (SIPp's clock has 1 s steps: a SIPp on time reads the full rate)
        achieved = created / max(placed_s, DURATION) if created else 0
        offered = sorted(t for t in (parse_ts(c.get("offered_at")) for c in by_number.values()) if t)
        offered_span = offered[-1] - offered[0] if len(offered) > 1 else 0
        waits = sorted(parse_ts(c["answered_at"]) - parse_ts(c["offered_at"]) for c in by_number.values()
                       if c["status"] == "answered" and c.get("answered_at") and c.get("offered_at"))
        events = []
        talk_s = 0.0
        for c in by_number.values():
            a, e = parse_ts(c.get("answered_at")), parse_ts(c.get("ended_at"))
            if c["status"] == "answered" and a and e and e >= a:
                events += [(a, 1), (e, -1)]
                talk_s += e - a
        events.sort(key=lambda x: (x[0], x[1]))
        conc = maxconc = 0
        for _, d in events:
            conc += d
            maxconc = max(maxconc, conc)
        # relayed RTP per second / 50 (20 ms packets) = calls whose audio flowed, over 5 s windows
        media_conc = 0  # calls whose agent's audio was relayed to the caller
        both_conc = 0   # calls with audio both ways (the caller's reaching us, ours reaching the caller)
        active_max = 0
        thread_peak = 0.0  # the busiest daemon thread's share of a core, over 5 s windows
        answer_max = 0.0
        for i, smp in enumerate(samples):
            active_max = max(active_max, smp["active"])
            answer_max = max(answer_max, smp["answer_s"])
            j = i - 5
            if j >= 0 and smp["t"] > samples[j]["t"]:
                dt = smp["t"] - samples[j]["t"]
                d = {k: smp[k] - samples[j][k] for k in ("to_caller", "to_agent", "sent", "received")}
                media_conc = max(media_conc, d["to_caller"] / dt / 50)
                to_callers = (d["sent"] - d["to_agent"]) / dt / 50       # prompts, hold, relayed agent audio
                from_callers = (d["received"] - d["to_caller"]) / dt / 50  # every received agent packet is relayed
                both_conc = max(both_conc, min(to_callers, from_callers))
                old_th = samples[j]["threads"]
                for tid, v in smp["threads"].items():
                    if tid in old_th:
                        thread_peak = max(thread_peak, (v - old_th[tid]) / dt)
        relay_agent = m1.get("switchboard_voice_rtp_relayed_to_agent_total", 0) - m0.get(
            "switchboard_voice_rtp_relayed_to_agent_total", 0)
        relay_caller = m1.get("switchboard_voice_rtp_relayed_to_caller_total", 0) - m0.get(
            "switchboard_voice_rtp_relayed_to_caller_total", 0)
        expected_pkts = talk_s * 50

        # ---- CPU and memory
        wall = t1 - t0
        d_cpu = (d_cpu1 - d_cpu0) if d_cpu1 is not None else None
        loop_cpu = (th1.get(self.pid, 0) - th0.get(self.pid, 0)) if th1 else None
        others = sorted(((th1[t] - th0.get(t, 0)) for t in th1 if t != self.pid), reverse=True)
        caller_cpu = (rusage.ru_utime + rusage.ru_stime) if rusage is not None else None
        phone_cpu = sum(b - a for a, b in zip(ph_cpu0, ph_cpu1))
        mbusy = 100.0 * (mc1[0] - mc0[0]) / max(1, mc1[1] - mc0[1])
        iowait = 100.0 * (mc1[2] - mc0[2]) / max(1, mc1[1] - mc0[1])
        metrics_max = max((smp["metrics_s"] for smp in samples), default=0)
        # what the rest of the machine used (other people's tests, builds, this script's
        # sampling...), % of one core
        others_cpu = max(0.0, mbusy * NCPU - 100 * ((d_cpu or 0) + (caller_cpu or 0) + phone_cpu) / wall)
        legs = m1.get("switchboard_voice_legs_invited_total", 0) - m0.get("switchboard_voice_legs_invited_total", 0)
        legs_ans = m1.get("switchboard_voice_legs_answered_total", 0) - m0.get("switchboard_voice_legs_answered_total", 0)
        phone_ok = sum(stat_int(b, "SuccessfulCall(C)") - stat_int(a, "SuccessfulCall(C)")
                       for a, b in zip(phone_st0, phone_st1))
        phone_failed = sum(stat_int(b, "FailedCall(C)") - stat_int(a, "FailedCall(C)")
                           for a, b in zip(phone_st0, phone_st1))
        phone_current = sum(stat_int(b, "CurrentCall") for b in phone_st1)

        row = dict(
            rate=rate, created=created, achieved=achieved, failed=failed, fail_pct=fail_pct, sipp_failed=sipp_failed,
            sipp_reasons=fail_reasons(cst), log_bad=log_bad, missing=missing, answered_sipp_failed=answered_sipp_failed,
            status_counts=status_counts, foreign=foreign, maxconc=maxconc, media_conc=media_conc, active_max=active_max,
            wait_p50=waits[len(waits) // 2] if waits else None, wait_p95=waits[int(len(waits) * 0.95)] if waits else None,
            relay_agent=relay_agent, relay_caller=relay_caller, expected_pkts=expected_pkts,
            d_cpu=d_cpu, wall=wall, loop_cpu=loop_cpu, other_cpu=others[0] if others else None,
            cpu_per_call=(d_cpu / created) if d_cpu is not None and created else None,
            caller_cpu=caller_cpu, phone_cpu=phone_cpu, mbusy=mbusy, hwm=hwm, rss=rss, hwm_reset=hwm_reset,
            legs=legs, legs_ans=legs_ans, phone_ok=phone_ok, phone_failed=phone_failed, phone_current=phone_current,
            rec_files=rec_files, rec_bytes=rec_bytes, both_conc=both_conc, others=others_cpu, iowait=iowait, metrics_max=metrics_max, stuck=stuck, crashed=crashed, news=news, sip_drops=sip_drops,
            phone_drops=phone_drops, thread_peak=thread_peak, answer_max=answer_max, offered_span=offered_span,
            sipp_retrans=stat_int(cst, "Retransmissions(C)"),
            sipp_rc=caller.returncode, callers_s=t_callers_done - t0,
            passed=(not crashed and created > 0 and fail_pct < FAIL_PCT and achieved >= 0.95 * rate and stuck == 0))
        self.rows.append(row)
        return row

    # -- report

    def print_row_detail(self, r):
        pct = lambda a, b: f"{100.0 * a / b:.1f}%" if b else "-"
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(r["status_counts"].items()))
        log(f"  calls      {r['created']} placed by SIPp at {r['achieved']:.1f}/s (target {r['rate']:g}/s; the daemon "
            f"logged them offered over {r['offered_span']:.0f} s); {r['created'] - r['failed']} answered by an agent "
            f"and completed")
        log(f"  failed     {r['failed']} ({r['fail_pct']:.2f}%): SIPp failed {r['sipp_failed']}"
            f"{' (' + r['sipp_reasons'] + ')' if r['sipp_reasons'] else ''}; call log not 'answered' "
            f"{r['log_bad']}, no call-log row {r['missing']}, answered but SIPp failed {r['answered_sipp_failed']}")
        foreign = f"; {r['foreign']} rows not from this step's callers" if r["foreign"] else ""
        log(f"  call log   {statuses or '-'}{foreign}")
        w50 = f"{r['wait_p50']:.1f}" if r["wait_p50"] is not None else "-"
        w95 = f"{r['wait_p95']:.1f}" if r["wait_p95"] is not None else "-"
        log(f"  latency    IVR answers the INVITE: max {1000 * r['answer_max']:.0f} ms (SIPp's 1 s averages); "
            f"GET /metrics answered in {1000 * r['metrics_max']:.0f} ms at worst; "
            f"SIPp retransmissions {r['sipp_retrans']}; offered -> agent answered p50 {w50} s, p95 {w95} s "
            f"(prompt {PROMPT_S:g} s + ring {RING_S:g} s)")
        log(f"  legs       {r['legs']:.0f} INVITEs to phones ({r['legs'] / r['created'] if r['created'] else 0:.1f}/call), "
            f"{r['legs_ans']:.0f} answered; phones: {r['phone_ok']} completed, {r['phone_failed']} failed, "
            f"{r['phone_current']} open at the end")
        log(f"  media      concurrent calls: {r['active_max']:.0f} at most (calls_active), {r['both_conc']:.0f} with "
            f"audio both ways (RTP/s / 50, 5 s windows); bridged to an agent: {r['maxconc']} at most (call log), "
            f"{r['media_conc']:.0f} with the agent's audio relayed; relayed "
            f"{pct(r['relay_agent'], r['expected_pkts'])} to agents, {pct(r['relay_caller'], r['expected_pkts'])} to "
            f"callers of 50 pkt/s x talk time")
        if r["d_cpu"] is not None:
            log(f"  daemon     CPU {r['d_cpu']:.1f} s in {r['wall']:.0f} s = {100 * r['d_cpu'] / r['wall']:.0f}% of a core "
                f"(loop thread {100 * (r['loop_cpu'] or 0) / r['wall']:.0f}%, busiest other thread "
                f"{100 * (r['other_cpu'] or 0) / r['wall']:.0f}%; busiest thread over 5 s at most "
                f"{100 * r['thread_peak']:.0f}%); {1000 * r['cpu_per_call']:.1f} ms CPU per call; "
                f"VmHWM {r['hwm'] / 1024:.1f} MiB{'' if r['hwm_reset'] else ' (lifetime: could not reset)'}, "
                f"VmRSS {r['rss'] / 1024:.1f} MiB after; recordings: {r['rec_files']} files, "
                f"{r['rec_bytes'] / 1048576:.0f} MiB (deleted after counting)")
        cc = f"{100 * r['caller_cpu'] / r['wall']:.0f}%" if r["caller_cpu"] is not None else "?"
        sd = r["sip_drops"] if r["sip_drops"] is not None else "?"
        log(f"  SIPp       callers {cc} of a core, phones {100 * r['phone_cpu'] / r['wall']:.0f}%; machine busy "
            f"{r['mbusy']:.0f}% of {NCPU} cores (+{r['iowait']:.0f}% iowait), {r['others']:.0f}% of a core by other "
            f"processes; UDP datagrams "
            f"dropped (full receive buffer): daemon's SIP "
            f"socket {sd}, phones' SIP sockets {r['phone_drops']}")
        if "stop_s" in r:
            stop = f"{r['stop_s']:.1f} s" if r["stop_s"] is not None else "not within 120 s: killed"
            log(f"  stop       SIGTERM after the rate: {stop}, exit code {r['exit']}")
            if r["exit"] != 0:
                r["passed"] = False
        if r["stuck"] > 0:
            log(f"  STUCK      {r['stuck']} calls still active in the daemon 30 s after the last caller hung up")
        elif r["stuck"] < 0:
            log("  STUCK      the daemon did not answer GET /metrics 30 s after the last caller hung up")
        if r["crashed"]:
            log(f"  CRASHED    the daemon exited with {self.daemon.returncode}")
        if r["news"]:
            log(f"  daemon log {len(r['news'])} warning/error lines, e.g.:")
            seen = set()
            for ln in r["news"]:
                key = re.sub(r"\d+", "N", ln)[:160]
                if key not in seen:
                    seen.add(key)
                    log("             " + ln[:240])
                if len(seen) >= 5:
                    break
        log(f"  => {'PASS' if r['passed'] else 'FAIL'}" + ("" if r["passed"] else self.why(r)))

    def why(self, r):
        why = []
        if r["crashed"]:
            why.append("daemon crashed")
        if r["fail_pct"] >= FAIL_PCT:
            why.append(f"{r['fail_pct']:.2f}% failed >= {FAIL_PCT:g}%")
        if r["achieved"] < 0.95 * r["rate"]:
            why.append(f"offered {r['achieved']:.1f}/s < 95% of {r['rate']:g}/s")
        if r["stuck"] > 0:
            why.append(f"{r['stuck']} stuck calls")
        elif r["stuck"] < 0:
            why.append("daemon unresponsive after the calls")
        if r.get("exit") not in (None, 0):
            why.append(f"the daemon exited with {r['exit']} on SIGTERM")
        return " (" + "; ".join(why) + ")"

    def table(self):
        log("")
        log(" rate  placed  placed   failed  fail%   calls w/ bridged  wait p50/  INVITE  daemon CPU          SIPp   others  daemon  result")
        log(" /s    calls   calls/s  calls           media    max      p95 s      ans ms  %core ms/call peak  %core  %core   HWM MiB")
        for r in self.rows:
            if r["d_cpu"] is not None:
                dc = f"{100 * r['d_cpu'] / r['wall']:5.0f} {1000 * r['cpu_per_call']:7.1f} {100 * r['thread_peak']:4.0f}%"
            else:
                dc = "    ?       ?     ?"
            sc = (r["caller_cpu"] or 0) + r["phone_cpu"]
            w = (f"{r['wait_p50']:.1f}/{r['wait_p95']:.1f}" if r["wait_p50"] is not None else "-")
            hwm = f"{r['hwm'] / 1024:.1f}" if r["hwm"] else "?"
            log(f" {r['rate']:<5g} {r['created']:<7d} {r['achieved']:<8.1f} {r['failed']:<7d} {r['fail_pct']:<7.2f} "
                f"{r['both_conc']:<8.0f} {r['maxconc']:<8d} {w:<10s} {1000 * r['answer_max']:<7.0f} {dc} "
                f"{100 * sc / r['wall']:5.0f}  {r['others']:5.0f}   {hwm:<7s} {'PASS' if r['passed'] else 'FAIL'}")
        log(" placed: SIPp's call rate; calls w/ media: calls with RTP both ways at once (prompt, hold or agent;")
        log(" daemon's RTP pkt/s / 50, 5 s windows); bridged: calls with an agent at once (call log); wait: offered")
        log(" -> agent answered; INVITE ans: the IVR's 200 to the caller's INVITE, worst SIPp 1 s average;")
        log(" daemon CPU: utime+stime / wall, per call, peak: busiest thread over 5 s; SIPp: callers + phones;")
        log(" others: the rest of the machine (processes that are not this benchmark's), % of one core")

    def summary(self, setup_hwm):
        passed = [r for r in self.rows if r["passed"]]
        best = max(passed, key=lambda r: r["rate"]) if passed else None
        conc_pass = max((r["both_conc"] for r in passed), default=0)
        conc_all = max((r["both_conc"] for r in self.rows), default=0)
        bridged_pass = max((r["maxconc"] for r in passed), default=0)
        hwm = max((r["hwm"] or 0 for r in self.rows), default=0)
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip() or "?"
        dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet"]).returncode != 0
        log("")
        log("================================= Switchboard voice benchmark =================================")
        outside = "" if os.path.realpath(BUILD_DIR).startswith(os.path.realpath(ROOT) + os.sep) else \
            " (of this repo; the binary was built elsewhere, from its own source)"
        log(f"date        {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}   commit {commit}{' (dirty)' if dirty else ''}"
            f"{outside}")
        log(f"machine     {NCPU} CPUs, {cpu_model()}; SIPp {sipp_version()} on the same machine, loopback UDP; "
            f"{self.baseline:.0f}% busy before the start")
        built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.stat(SB_BIN).st_mtime))
        version = subprocess.run([SB_BIN, "version"], capture_output=True, text=True).stdout.strip() or "?"
        log(f"binary      {SB_BIN} ({version}, built {built})")
        log(f"scenario    caller -> DID {DID} (IVR prompt) -> presses 1 after {PROMPT_S:g} s -> Sales queue "
            f"({self.strategy_note}) -> agent's phone rings {RING_S:g} s, answers, echoes RTP -> {TALK_S:g} s talk -> "
            f"caller hangs up; {AGENTS} agents on {PHONES} SIPp phone instance(s); each rate {DURATION} s"
            f"{' (QUICK)' if QUICK else ''}")
        log(f"caller      {self.caller_cmd}")
        log(f"failed call SIPp scenario failed, or the call-log row is missing or not 'answered'; a rate passes "
            f"with < {FAIL_PCT:g}% failed, >= 95% of the rate offered and no call left in the daemon")
        self.table()
        log("")
        if best:
            log(f"highest rate sustained {DURATION} s with < {FAIL_PCT:g}% failed: {best['rate']:g} calls/s "
                f"(target >= 60)")
            log(f"daemon CPU at that rate: {1000 * best['cpu_per_call']:.1f} ms per call, "
                f"{100 * best['d_cpu'] / best['wall']:.0f}% of one core over the step")
        else:
            log(f"highest rate sustained {DURATION} s with < {FAIL_PCT:g}% failed: none of {', '.join(f'{r:g}' for r in RATES)}")
        log(f"max concurrent calls with media: {conc_pass:.0f} in a passing step ({bridged_pass} of them bridged to an "
            f"agent at most), {conc_all:.0f} in any step (target >= 1,000)")
        log(f"peak RSS (VmHWM) during the calls: {hwm / 1024:.1f} MiB; with the setup (argon2id hashing of "
            f"{AGENTS} agents' passwords): {setup_hwm / 1024:.1f} MiB")
        log(f"reference   {REFERENCE}")
        log("=" * 95)
        cpu_ms = f"{1000 * best['cpu_per_call']:.1f}" if best else "-"
        log(f"RESULT voice strategy={self.strategy} agents={AGENTS} duration_s={DURATION} rates={','.join(f'{r:g}' for r in RATES)}"
            f" max_rate={best['rate'] if best else 0:g} max_concurrent_media={conc_pass:.0f} max_bridged={bridged_pass}"
            f" max_concurrent_any={conc_all:.0f}"
            f" cpu_ms_per_call={cpu_ms} peak_rss_kb={hwm} setup_rss_kb={setup_hwm}")
        return 0 if best else 1


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def sipp_version():
    r = subprocess.run([SIPP, "-v"], capture_output=True, text=True)
    m = re.search(r"SIPp v?([\w.\-]+)", r.stdout + r.stderr)
    return m.group(1).rstrip(".") if m else "?"


def main():
    for f in (SB_BIN,):
        if not os.access(f, os.X_OK):
            die(f"{f} is missing: run `make bench-voice` (or build {BUILD_DIR})")
    if shutil.which(SIPP) is None:
        die("sipp is missing: apt-get install -y sip-tester")
    if not os.path.isdir(PROMPTS):
        die(f"{PROMPTS} is missing: cmake --build {BUILD_DIR} --target prompts")
    b = Bench()
    status = 1
    try:
        log(f"== voice: rates {' '.join(f'{r:g}' for r in RATES)} calls/s, {DURATION} s each; strategy {STRATEGY}"
            f"{' (or ring_all)' if STRATEGY_FALLBACK else ''}; "
            f"{AGENTS} agents; scratch {b.work}")
        b.audio = os.path.join(b.work, "audio.pcma")
        with open(b.audio, "wb") as f:  # 1 s of raw PCMA for rtp_stream (any bytes are audio)
            f.write(bytes(range(256)) * 31 + bytes(range(64)))
        mc0 = machine_cpu()
        time.sleep(3)
        mc1 = machine_cpu()
        b.baseline = 100.0 * (mc1[0] - mc0[0]) / max(1, mc1[1] - mc0[1])
        log(f"  machine busy before the start: {b.baseline:.0f}% of {NCPU} cores (other processes)")
        t0 = time.monotonic()
        b.data = os.path.join(b.work, "data-setup")
        b.write_ini()
        b.start_daemon("daemon-setup")
        log(f"  daemon pid {b.pid}: HTTP 127.0.0.1:{b.http_port}, SIP 127.0.0.1:{b.sip_port} (udp)")
        b.setup_agents()
        b.start_phones()
        b.register()
        setup_hwm = proc_status_kb(b.pid, "VmHWM") or 0
        log(f"  setup took {time.monotonic() - t0:.0f} s; daemon VmRSS {proc_status_kb(b.pid, 'VmRSS') / 1024:.1f} MiB, "
            f"VmHWM {setup_hwm / 1024:.1f} MiB (argon2id)")
        if not ONE_DAEMON:
            took, rc = b.stop_daemon()
            if rc != 0:
                die(f"the setup daemon exited with {rc}")
            b.snapshot = b.data
            log("  each rate runs on a fresh daemon started on a copy of this data dir (ONE_DAEMON=1: one daemon)")
        for i, rate in enumerate(RATES, 1):
            log("")
            log(f"== {rate:g} calls/s for {DURATION} s ({int(round(rate * DURATION))} calls) ==")
            if not ONE_DAEMON:
                b.fresh_daemon(f"r{i:02d}")
                time.sleep(2)
            r = b.run_rate(i, rate)
            if not ONE_DAEMON and not r["crashed"]:
                r["stop_s"], r["exit"] = b.stop_daemon()
                if not KEEP and os.path.isdir(b.data):
                    shutil.rmtree(b.data, ignore_errors=True)
            b.print_row_detail(r)
            if r["crashed"]:
                b.notes.append(f"the daemon crashed at {rate:g} calls/s")
                break
            if not r["passed"] and STOP_ON_FAIL:
                log(f"  (the ramp stops here: STOP_ON_FAIL=0 runs every rate)")
                break
            time.sleep(SETTLE)
        status = b.summary(setup_hwm)
    except KeyboardInterrupt:
        log("voice.py: interrupted")
        status = 130
    finally:
        b.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
