#!/usr/bin/env python3
"""The data channel through sshd: plain bash against custos, in one run.

What it measures. Debian's real sshd on a loopback port serves two users in
the same run: `custos-b0`, whose login shell is /bin/bash (the baseline), and
`custos-b1`, whose login shell is custos-shell installed for real by
install.sh (setuid, /etc/custos, /var/lib/custos). For each case and user it
moves a random file (1 GiB by default) through the connection:

    ssh-cat-down   ssh host 'cat FILE' > /dev/null
    ssh-cat-up     ssh host 'cat > /dev/null' < FILE
    scp-up         scp FILE host:NEW           (sftp protocol, the default)
    scp-O-up       scp -O FILE host:NEW        (legacy scp -t through the shell)
    rsync-up       rsync -a --whole-file FILE host:NEW  (a new name each time)
    scp-down       scp host:FILE LOCAL         (sftp protocol)

and reports, per case, the median over the rounds of the wall-clock
throughput (MB/s, 10^6 bytes) and of the server side's CPU per GB (10^9
bytes): sshd and every process of its sessions run in a cgroup v2 of their
own, whose cpu.stat usage_usec is read before and after each transfer (after
the session's processes are gone). Also: the client's CPU, the bytes custos
recorded per transfer (new entries under /var/lib/custos/chunks and
recordings), and where the server's CPU went, from sampling
/proc/PID/task/*/stat of the cgroup's processes during each transfer (the
recorder's main thread is the recording thread, which masks, hashes and
writes; its other threads are the relays).

Byte-exactness is checked once per case and user: uploaded and downloaded
copies by SHA-256; for the two `cat` cases, by an untimed transfer before the
timed rounds (`ssh host 'cat FILE' | sha256`, `ssh host sha256sum < FILE`),
which also warms the page cache. Users alternate within each round.

How to run (as root; takes the system tests' lock, so it waits for a running
`cargo test --test system` and they wait for it):

    cargo build --release --bins
    python3 bench/sshd_channel.py --binaries target/release --json /tmp/ch.json

Options: --size-mb (1024), --rounds (3), --cases (comma list of the names
above), --perf DIR (profiles every custos transfer with `perf record -a`;
for diagnosis only, it perturbs the timings). It refuses to run on a host
with a custos installation the system tests did not make, and removes all it
made (install.sh --uninstall --purge, the users, sshd, the cgroup) at the
end, also on failure or Ctrl-C.
"""

import argparse
import datetime
import fcntl
import hashlib
import json
import os
import platform
import pwd
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INSTALL_SH = REPO / "install.sh"
LOCK_FILE = "/tmp/custos-system-tests.lock"
CONFIG_DIR = Path("/etc/custos")
SPOOL = Path("/var/lib/custos")
STATE = Path("/var/lib/custos-install")
MARKER = STATE / "system-tests"
SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
BASH_USER = "custos-b0"
CUSTOS_USER = "custos-b1"
SERVICE_USER = "custos"
USERS = (BASH_USER, CUSTOS_USER)
CLK_TCK = os.sysconf("SC_CLK_TCK")

CASES = {
    "ssh-cat-down": "ssh host 'cat FILE' > /dev/null",
    "ssh-cat-up": "ssh host 'cat > /dev/null' < FILE",
    "scp-up": "scp upload (sftp)",
    "scp-O-up": "scp -O upload (legacy)",
    "rsync-up": "rsync -a --whole-file upload (new name)",
    "scp-down": "scp download (sftp)",
}


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run(cmd, check=True, **kw):
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if check and out.returncode != 0:
        raise RuntimeError(f"{shlex.join(map(str, cmd))} failed ({out.returncode}):\n{out.stdout}")
    return out


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def processes_of(uid):
    """Pids whose real uid is `uid`, from /proc: exactly that user's."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            pids.append(int(entry))
                        break
        except OSError:
            pass
    return pids


def kill_user_processes(name):
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    for pid in processes_of(uid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    deadline = time.monotonic() + 5
    while processes_of(uid) and time.monotonic() < deadline:
        time.sleep(0.02)


def remove_user(name):
    if user_exists(name):
        kill_user_processes(name)
        run(["userdel", "-r", "-f", name], check=False)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def tree_size(path):
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(p):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def recordings():
    found = set()
    for d in (SPOOL / "chunks", SPOOL / "recordings"):
        if d.is_dir():
            found.update(d / e for e in os.listdir(d))
    return found


# ------------------------------------------------------------------ cgroup

def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[:1] == ["cgroup2"]:
                return Path(left.split()[4])
    raise RuntimeError("no cgroup2 file system is mounted (mount | grep cgroup)")


def own_cgroup():
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    raise RuntimeError("this process is in no cgroup v2")


class Cgroup:
    def __init__(self):
        self.dir = cgroup2_mount() / own_cgroup().lstrip("/") / f"bench-sshd-channel-{os.getpid()}"
        self.dir.mkdir()

    def usage_usec(self):
        for line in (self.dir / "cpu.stat").read_text().splitlines():
            key, value = line.split()
            if key == "usage_usec":
                return int(value)
        raise RuntimeError("no usage_usec in cpu.stat")

    def procs(self):
        """Every pid in the cgroup and its descendants (custos makes a
        cgroup per session below the one sshd runs in)."""
        pids = []
        for root, _dirs, _files in os.walk(self.dir):
            try:
                pids += [int(p) for p in Path(root, "cgroup.procs").read_text().split()]
            except OSError:
                pass
        return pids

    def remove(self):
        for root, _dirs, _files in os.walk(self.dir, topdown=False):
            kill = Path(root, "cgroup.kill")
            try:
                if Path(root, "cgroup.procs").read_text().split() and kill.exists():
                    kill.write_text("1")
            except OSError:
                pass
            for _ in range(100):
                try:
                    os.rmdir(root)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


# ------------------------------------------------------------------ sampler

def read_stat(path):
    """(comm, utime + stime in ticks) of a /proc stat file."""
    with open(path) as f:
        text = f.read()
    comm = text[text.index("(") + 1 : text.rindex(")")]
    rest = text[text.rindex(")") + 2 :].split()
    return comm, int(rest[11]) + int(rest[12])


def real_uid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    return -1


class Sampler(threading.Thread):
    """Samples the CPU time of every thread of the cgroup's processes, so
    the last sample of each thread approximates its total (what ran in the
    final interval before a thread ended is missed)."""

    def __init__(self, cgroup, sshd_pid, interval=0.2):
        super().__init__(daemon=True)
        self.cgroup, self.sshd_pid, self.interval = cgroup, sshd_pid, interval
        self.stop = threading.Event()
        self.last = {}  # (pid, tid) -> (label, ticks)
        self.uids = {}
        self.recorder_threads = 0
        # The recorders' own session directories, from their open
        # descriptors (live.lock is held for the session's life): other
        # root processes on the host may write into the spool meanwhile.
        self.sessions = set()
        self.found = set()

    def label(self, pid, tid, comm):
        if pid == self.sshd_pid:
            return "sshd listener"
        if comm == "custos-shell":
            if pid not in self.uids:
                self.uids[pid] = real_uid(pid)
            if self.uids[pid] == 0:
                return "custos warden"
            return "custos recording thread" if tid == pid else "custos relay threads"
        if comm.startswith("sshd"):
            return "sshd session"
        return comm

    def sample(self):
        for pid in self.cgroup.procs():
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
                pcomm, _ = read_stat(f"/proc/{pid}/stat")
            except (OSError, ValueError):
                continue
            if pcomm == "custos-shell" and self.uids.get(pid) != 0:
                self.recorder_threads = max(self.recorder_threads, len(tids))
                if pid not in self.found:
                    self.find_session(pid)
            for tid in tids:
                try:
                    comm, ticks = read_stat(f"/proc/{pid}/task/{tid}/stat")
                except (OSError, ValueError):
                    continue
                self.last[(pid, tid)] = (self.label(pid, tid, pcomm if pcomm == "custos-shell" else comm), ticks)

    def find_session(self, pid):
        roots = [str(SPOOL / "chunks") + "/", str(SPOOL / "recordings") + "/"]
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            for root in roots:
                if target.startswith(root):
                    self.sessions.add(Path(root) / target[len(root):].split("/")[0])
                    self.found.add(pid)

    def run(self):
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval)

    def finish(self):
        self.stop.set()
        self.join()
        seconds = {}
        for label, ticks in self.last.values():
            seconds[label] = seconds.get(label, 0.0) + ticks / CLK_TCK
        return seconds


# ------------------------------------------------------------------ the bench

class Bench:
    def __init__(self, args):
        self.args = args
        self.size = args.size_mb << 20
        self.lock = None
        self.installed = False
        self.users_made = []
        self.prefix = None
        self.tmp = None
        self.cgroup = None
        self.sshd = None
        self.port = None
        self.results = {}

    # -- set-up

    def take_lock(self):
        self.lock = open(LOCK_FILE, "a")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for {LOCK_FILE} (a system test run holds it)")
            fcntl.flock(self.lock, fcntl.LOCK_EX)

    def check_host(self):
        ours = MARKER.exists()
        if not ours and (CONFIG_DIR.exists() or SPOOL.exists()):
            raise SystemExit(
                f"this host has a custos installation ({CONFIG_DIR} or {SPOOL}) that neither the system "
                f"tests nor this bench made; refusing to overwrite it"
            )
        for name in USERS:
            remove_user(name)
        if ours:
            log("removing what an earlier test or bench run left")
            for d in (CONFIG_DIR, SPOOL, STATE):
                shutil.rmtree(d, ignore_errors=True)

    def install(self):
        for name in USERS:
            run(["useradd", "-m", "-s", "/bin/bash", name])
            self.users_made.append(name)
        self.prefix = Path(tempfile.mkdtemp(prefix="custos-bench-prefix-"))
        os.chmod(self.prefix, 0o755)
        binaries = Path(self.args.binaries).resolve()
        for b in ("custos", "custos-shell"):
            if not os.access(binaries / b, os.X_OK):
                raise SystemExit(f"{binaries / b} is missing: cargo build --release --bins")
        self.installed = True
        out = run(["bash", str(INSTALL_SH), "--binaries", str(binaries), "--prefix", str(self.prefix), "--user", CUSTOS_USER], check=False)
        if out.returncode != 0:
            raise RuntimeError(f"install.sh failed:\n{out.stdout}")
        MARKER.write_text("custos system tests (bench/sshd_channel.py)\n")
        shell = pwd.getpwnam(CUSTOS_USER).pw_shell
        assert shell == str(self.prefix / "bin/custos-shell"), shell
        log(f"installed custos into {self.prefix}; {CUSTOS_USER}'s login shell is {shell}, {BASH_USER}'s is /bin/bash")

    def make_data(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="custos-bench-"))
        os.chmod(self.tmp, 0o755)
        self.src = self.tmp / "src.bin"
        log(f"writing {self.args.size_mb} MiB of random bytes to {self.src}")
        h = hashlib.sha256()
        with open(self.src, "wb") as f:
            left = self.size
            while left:
                chunk = os.urandom(min(left, 4 << 20))
                h.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        os.chmod(self.src, 0o644)
        self.digest = h.hexdigest()
        self.down = self.tmp / "down"
        self.down.mkdir()
        for name in USERS:
            pw = pwd.getpwnam(name)
            dst = Path(pw.pw_dir) / "src.bin"
            shutil.copyfile(self.src, dst)
            os.chown(dst, pw.pw_uid, pw.pw_gid)

    def start_sshd(self):
        keys = self.tmp / "ssh"
        keys.mkdir(mode=0o700)
        for k in ("host_key", "client_key"):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / k)])
        self.key = keys / "client_key"
        for name in USERS:
            pw = pwd.getpwnam(name)
            ssh_dir = Path(pw.pw_dir) / ".ssh"
            ssh_dir.mkdir(mode=0o700, exist_ok=True)
            shutil.copyfile(keys / "client_key.pub", ssh_dir / "authorized_keys")
            for p in (ssh_dir, ssh_dir / "authorized_keys"):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            os.chmod(ssh_dir / "authorized_keys", 0o600)
        os.makedirs("/run/sshd", exist_ok=True)
        self.cgroup = Cgroup()
        procs = self.cgroup.dir / "cgroup.procs"
        for _ in range(5):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            config = keys / "sshd_config"
            config.write_text(
                "# sshd for bench/sshd_channel.py (as tests/system/sshd.rs)\n"
                f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys}/host_key\nPidFile {keys}/sshd.pid\n"
                "UsePAM yes\nPubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                f"AuthorizedKeysFile .ssh/authorized_keys\nAllowUsers {' '.join(USERS)}\nPrintMotd no\nPrintLastLog no\n"
                f"Subsystem sftp {SFTP_SERVER}\n"
            )
            self.sshd_log = keys / "sshd.log"

            def into_cgroup(procs=procs):
                procs.write_text(str(os.getpid()))

            with open(self.sshd_log, "w") as logf:
                child = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=logf, preexec_fn=into_cgroup)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and child.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    self.sshd, self.port = child, port
                    log(f"sshd pid {child.pid} on 127.0.0.1:{port}, in cgroup {self.cgroup.dir}")
                    return
                except OSError:
                    time.sleep(0.05)
            child.kill()
            child.wait()
        raise RuntimeError(f"sshd did not start:\n{self.sshd_log.read_text()}")

    # -- clients

    def client_options(self):
        return ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "-i", str(self.key)]

    def ssh(self, user, command):
        return ["ssh", *self.client_options(), "-p", str(self.port), f"{user}@127.0.0.1", command]

    def scp(self, legacy, src, dst):
        return ["scp", *(["-O"] if legacy else []), "-q", "-P", str(self.port), *self.client_options(), src, dst]

    def rsync(self, src, dst):
        shell = shlex.join(["ssh", *self.client_options(), "-p", str(self.port)])
        return ["rsync", "-a", "--whole-file", "-e", shell, src, dst]

    def home(self, user):
        return Path(pwd.getpwnam(user).pw_dir)

    def transfer(self, case, user, n):
        """(argv, stdin path or None, stdout path or None, the copy to check or None)."""
        host = f"{user}@127.0.0.1"
        home = self.home(user)
        name = f"{case}-{n}.bin"
        if case == "ssh-cat-down":
            return self.ssh(user, f"cat {home / 'src.bin'}"), None, None, None
        if case == "ssh-cat-up":
            return self.ssh(user, "cat > /dev/null"), self.src, None, None
        if case == "scp-up":
            return self.scp(False, str(self.src), f"{host}:{name}"), None, None, home / name
        if case == "scp-O-up":
            return self.scp(True, str(self.src), f"{host}:{name}"), None, None, home / name
        if case == "rsync-up":
            return self.rsync(str(self.src), f"{host}:{name}"), None, None, home / name
        if case == "scp-down":
            return self.scp(False, f"{host}:src.bin", str(self.down / name)), None, None, self.down / name
        raise ValueError(case)

    def verify_cat(self, case, user):
        """The untimed byte-exactness check of the `cat` cases."""
        if case == "ssh-cat-down":
            p = subprocess.Popen(self.ssh(user, f"cat {self.home(user) / 'src.bin'}"), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE)
            h = hashlib.sha256()
            while chunk := p.stdout.read(1 << 20):
                h.update(chunk)
            got = h.hexdigest()
            rc = p.wait()
        else:
            with open(self.src, "rb") as f:
                out = subprocess.run(self.ssh(user, "sha256sum"), stdin=f, stdout=subprocess.PIPE, text=True)
            got, rc = (out.stdout.split() or [""])[0], out.returncode
        if rc != 0 or got != self.digest:
            raise RuntimeError(f"{case} as {user}: exit {rc}, sha256 {got}, expected {self.digest}")
        self.wait_idle()

    def wait_idle(self, timeout=30):
        """Until only the sshd listener is left in the cgroup."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if set(self.cgroup.procs()) <= {self.sshd.pid}:
                return True
            time.sleep(0.02)
        log(f"warning: session processes still running after {timeout}s: {self.cgroup.procs()}")
        return False

    def one(self, case, user, n, check):
        argv, stdin, _, copy = self.transfer(case, user, n)
        self.wait_idle()
        before_rec = recordings()
        perf = None
        if self.args.perf and user == CUSTOS_USER:
            Path(self.args.perf).mkdir(parents=True, exist_ok=True)
            perf_data = Path(self.args.perf) / f"{case}-{n}.data"
            perf = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-a", "-o", str(perf_data)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        sampler = Sampler(self.cgroup, self.sshd.pid)
        usage0 = self.cgroup.usage_usec()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        sampler.start()
        stdin_f = open(stdin, "rb") if stdin else subprocess.DEVNULL
        t0 = time.monotonic()
        try:
            out = subprocess.run(argv, stdin=stdin_f, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        finally:
            if stdin:
                stdin_f.close()
        wall = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.wait_idle()
        server = (self.cgroup.usage_usec() - usage0) / 1e6
        threads = sampler.finish()
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        if out.returncode != 0:
            raise RuntimeError(f"{case} as {user} failed ({out.returncode}): {out.stderr.decode(errors='replace')}"
                               f"\nsshd log:\n{self.sshd_log.read_text()[-3000:]}")
        new = recordings() - before_rec
        own = sampler.sessions
        if user == CUSTOS_USER and not own:
            log(f"warning: {case} as {user}: the recorder's session directory was not seen; counting every new one")
            own = new
        rec_bytes = sum(tree_size(p) for p in own)
        if copy:
            if check:
                got = sha256_file(copy)
                if got != self.digest:
                    raise RuntimeError(f"{case} as {user}: the copy {copy} has sha256 {got}, expected {self.digest}")
            copy.unlink()
        client = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        gb = self.size / 1e9
        return {
            "seconds": wall,
            "mb_s": self.size / 1e6 / wall,
            "server_cpu_s": server,
            "server_cpu_s_per_gb": server / gb,
            "client_cpu_s_per_gb": client / gb,
            "recording_bytes": rec_bytes,
            "recordings": sorted(str(p) for p in own),
            "foreign_recordings": sorted(str(p) for p in new - own),
            "sampled_cpu_s": threads,
            "recorder_threads": sampler.recorder_threads,
        }

    def bench(self):
        cases = self.args.cases.split(",") if self.args.cases else list(CASES)
        for case in cases:
            if case not in CASES:
                raise SystemExit(f"unknown case {case}; known: {', '.join(CASES)}")
        for case in cases:
            runs = {u: [] for u in USERS}
            if case in ("ssh-cat-down", "ssh-cat-up"):
                for user in USERS:
                    self.verify_cat(case, user)
                    log(f"{case} as {user}: byte-exact (untimed check)")
            for r in range(self.args.rounds):
                order = USERS if r % 2 == 0 else tuple(reversed(USERS))
                for user in order:
                    res = self.one(case, user, r, check=(r == 0))
                    runs[user].append(res)
                    log(f"{case} round {r + 1} {user}: {res['mb_s']:.0f} MB/s, server {res['server_cpu_s_per_gb']:.2f} "
                        f"CPU s/GB, recorded {res['recording_bytes']} B")
            self.results[case] = runs
            self.write_json()

    # -- results

    def summary(self):
        rows = []
        for case, runs in self.results.items():
            med = lambda u, k: statistics.median(r[k] for r in runs[u])
            row = {
                "case": case,
                "what": CASES[case],
                "bash_mb_s": med(BASH_USER, "mb_s"),
                "custos_mb_s": med(CUSTOS_USER, "mb_s"),
                "bash_cpu_s_per_gb": med(BASH_USER, "server_cpu_s_per_gb"),
                "custos_cpu_s_per_gb": med(CUSTOS_USER, "server_cpu_s_per_gb"),
                "bash_client_cpu_s_per_gb": med(BASH_USER, "client_cpu_s_per_gb"),
                "custos_client_cpu_s_per_gb": med(CUSTOS_USER, "client_cpu_s_per_gb"),
                "recording_bytes": med(CUSTOS_USER, "recording_bytes"),
            }
            row["ratio"] = row["custos_mb_s"] / row["bash_mb_s"]
            # Where the server's CPU went, per GB, median over rounds.
            gb = self.size / 1e9
            for user, key in ((BASH_USER, "bash_breakdown"), (CUSTOS_USER, "custos_breakdown")):
                labels = sorted({l for r in runs[user] for l in r["sampled_cpu_s"]})
                row[key] = {l: statistics.median(r["sampled_cpu_s"].get(l, 0.0) for r in runs[user]) / gb for l in labels}
            rows.append(row)
        return rows

    def write_json(self):
        if not self.args.json:
            return
        doc = {
            "bench": "bench/sshd_channel.py",
            "argv": sys.argv,
            "date_utc": self.date,
            "size_bytes": self.size,
            "rounds": self.args.rounds,
            "binaries": str(Path(self.args.binaries).resolve()),
            "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "load_at_start": self.load},
            "units": "MB = 10^6 bytes, GB = 10^9 bytes; medians over rounds",
            "summary": self.summary(),
            "runs": self.results,
        }
        Path(self.args.json).write_text(json.dumps(doc, indent=2) + "\n")

    def table(self):
        lines = [
            "| case | plain bash MB/s | custos MB/s | ratio | server CPU s/GB plain | custos | recording bytes |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.summary():
            lines.append(f"| {r['what']} | {r['bash_mb_s']:.0f} | {r['custos_mb_s']:.0f} | {r['ratio']:.2f} | "
                         f"{r['bash_cpu_s_per_gb']:.2f} | {r['custos_cpu_s_per_gb']:.2f} | {r['recording_bytes']:,.0f} |")
        lines.append("")
        labels = ["sshd session", "custos relay threads", "custos recording thread", "custos warden"]
        lines.append("Server CPU s/GB by process (sampled from /proc; custos user, plain bash user's sshd in brackets):")
        lines.append("")
        lines.append("| case | sshd session | custos relay threads | custos recording thread | custos warden | the command (cat, sftp-server, scp, rsync) | client CPU s/GB plain / custos |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for r in self.summary():
            b, b0 = r["custos_breakdown"], r["bash_breakdown"]
            others = {k: v for k, v in b.items() if k not in labels and k != "sshd listener"}
            rest = sum(others.values())
            cmd = ", ".join(sorted(others))
            lines.append(f"| {r['what']} | {b.get('sshd session', 0):.2f} ({b0.get('sshd session', 0):.2f}) | "
                         f"{b.get('custos relay threads', 0):.2f} | {b.get('custos recording thread', 0):.2f} | "
                         f"{b.get('custos warden', 0):.2f} | {rest:.2f} ({cmd}) | "
                         f"{r['bash_client_cpu_s_per_gb']:.2f} / {r['custos_client_cpu_s_per_gb']:.2f} |")
        return "\n".join(lines)

    # -- the whole run

    def main(self):
        if os.geteuid() != 0:
            raise SystemExit("must run as root: it installs a setuid custos-shell, creates users and starts sshd")
        for tool in (SSHD, SFTP_SERVER, shutil.which("rsync"), shutil.which("scp")):
            if not tool or not os.path.exists(tool):
                raise SystemExit(f"missing {tool}: apt-get install -y openssh-server openssh-client rsync")
        self.date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.load = os.getloadavg()
        self.take_lock()
        try:
            self.check_host()
            self.install()
            self.make_data()
            self.start_sshd()
            self.bench()
            self.write_json()
            print(f"\n{self.args.size_mb} MiB, {self.args.rounds} rounds, medians; {self.date}\n")
            print(self.table())
        finally:
            self.cleanup()

    def cleanup(self):
        log("cleaning up")
        if self.sshd:
            self.sshd.terminate()
            try:
                self.sshd.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.sshd.kill()
                self.sshd.wait()
        for name in self.users_made:
            kill_user_processes(name)
        if self.installed:
            kill_user_processes(SERVICE_USER)
        if self.cgroup:
            self.cgroup.remove()
        if self.installed:
            out = run(["bash", str(INSTALL_SH), "--uninstall", "--purge", "--prefix", str(self.prefix)], check=False)
            if out.returncode != 0:
                log(f"install.sh --uninstall --purge failed:\n{out.stdout}")
        for name in self.users_made:
            remove_user(name)
        for d in (self.prefix, self.tmp):
            if d:
                shutil.rmtree(d, ignore_errors=True)
        if self.lock:
            self.lock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binaries", default=str(REPO / "target/release"), help="directory with custos and custos-shell")
    ap.add_argument("--size-mb", type=int, default=1024, help="size of the file in MiB (default 1024)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", help=f"comma list of {', '.join(CASES)} (default all)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--perf", help="perf record -a every custos transfer into this directory (diagnosis only)")
    args = ap.parse_args()

    def terminate(signum, _frame):
        raise SystemExit(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    Bench(args).main()


if __name__ == "__main__":
    main()
