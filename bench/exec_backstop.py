#!/usr/bin/env python3
"""The exec backstop's cost per program start, measured in one run.

Runs the same timing program inside custos-shell sessions with
`[gate] exec = "enforce"`, `"audit"` and `"off"`, and outside custos
(`raw`), alternating the configurations round by round so the shared
machine's noise falls on all of them alike. The timing program starts
`/bin/true` N times (fork, exec, wait) and reports each start's time; the
table gives p50/p90/p99 per configuration and the p50 added over `off`.

    python3 bench/exec_backstop.py --shell target/release/custos-shell [--n 10000] [--rounds 3]

Without the setuid stage (as here) the filter is installed with
no_new_privs; the per-exec path (kernel notification, the reader's copy,
the recorder's policy check and answer, the record) is the same.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

TIMER = r'''
import os, sys, time, json
n = int(sys.argv[1]); out = []
for _ in range(n):
    t = time.perf_counter_ns()
    pid = os.posix_spawn("/bin/true", ["/bin/true"], {})
    os.waitpid(pid, 0)
    out.append(time.perf_counter_ns() - t)
print("TIMES " + json.dumps(out))
'''


def run(shell, mode, n, work):
    timer = os.path.join(work, "timer.py")
    with open(timer, "w") as f:
        f.write(TIMER)
    cmd = ["python3", timer, str(n)]
    env = {"PATH": "/usr/bin:/bin", "HOME": work, "LANG": "C.UTF-8"}
    if mode != "raw":
        conf = os.path.join(work, f"{mode}.toml")
        with open(conf, "w") as f:
            f.write(f'[recording]\nspool_dir = "{work}/spool-{mode}"\n[shell]\ndefault = "/bin/bash"\n[gate]\nexec = "{mode}"\n')
        env["CUSTOS_CONFIG"] = conf
        cmd = [shell, "-c", " ".join(cmd)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("TIMES "))
    return json.loads(line[len("TIMES "):])


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shell", default="target/release/custos-shell")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    modes = ["raw", "off", "audit", "enforce"]
    times = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as work:
        for _ in range(a.rounds):
            for m in modes:
                times[m] += run(os.path.abspath(a.shell), m, a.n, work)
    base = statistics.median(times["off"])
    print(f"exec backstop: {a.rounds} rounds x {a.n} starts of /bin/true each, {time.strftime('%Y-%m-%d')}")
    print(f"| configuration | p50 µs | p90 µs | p99 µs | p50 added over off µs |")
    print(f"|---|---:|---:|---:|---:|")
    for m in modes:
        xs = times[m]
        print(f"| {m} | {pct(xs, .5)/1e3:.0f} | {pct(xs, .9)/1e3:.0f} | {pct(xs, .99)/1e3:.0f} | {(statistics.median(xs) - base)/1e3:+.0f} |")


if __name__ == "__main__":
    main()
