"""Run every xlock benchmark and write bench/results/latest.md and latest.json.

    python bench/run.py            # the full run (tox -e bench runs this), a few minutes on 2 cores
    python bench/run.py --quick    # a smoke run with few rounds, to check that everything works

Every figure is a ratio against a baseline measured in the same run; see bench/README.md.
A binding whose driver or library is not built is reported as skipped, never silently left out.
"""

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import handoff
import report

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
PY = sys.executable


def progress(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def run_json(argv, **kw):
    out = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True, **kw).stdout
    return json.loads(out.strip().splitlines()[-1])


def fresh_namespace(root, label):
    path = tempfile.mkdtemp(prefix=label + "-", dir=root)  # mode 0700, owned by us: a valid namespace
    return path


# POSIX semaphores the run makes xlock create (doorbells, raw semaphores), as (kind, namespace, name):
# xlock never unlinks a doorbell (XL-WAIT-8), so the benchmark removes its own before deleting the
# namespaces, by computing their names with xlock's pure mapping (XL-SEM-6).
SEMAPHORES = []


def uses_semaphore(kind, namespace, name):
    SEMAPHORES.append((kind, namespace, name))


def unlink_semaphores():
    try:
        from xlock.names import semaphore_name
    except ImportError:
        return
    removed = 0
    for kind, namespace, name in SEMAPHORES:
        try:
            st = os.stat(namespace)
            os.unlink("/dev/shm/sem." + semaphore_name(kind, st.st_dev, st.st_ino, name).lstrip("/"))
            removed += 1
        except FileNotFoundError:
            pass
    if SEMAPHORES:
        progress("removed %d of the %d POSIX semaphores xlock may have created for the run" % (removed, len(SEMAPHORES)))
    del SEMAPHORES[:]


# ---------------------------------------------------------------------------------------------
# What exists on this machine


def ruby_env():
    env = dict(os.environ)
    rubylib = os.path.join(ROOT, "ruby", "lib")
    env["RUBYLIB"] = rubylib + (":" + env["RUBYLIB"] if env.get("RUBYLIB") else "")
    return env


def probe_drivers():
    """The bindings' protocol drivers that answer hello with the ``clock`` capability."""
    candidates = {
        "python": [PY, "-m", "xlock.driver"],
        "c": [os.path.join(ROOT, "c", "build", "xlock-driver")],
        "ruby": ["ruby", os.path.join(ROOT, "ruby", "exe", "xlock-driver")],
    }
    drivers, skipped = {}, {}
    for name, argv in candidates.items():
        env = ruby_env() if name == "ruby" else None
        if name == "c" and not os.access(argv[0], os.X_OK):
            skipped[name] = "c/build/xlock-driver is not built"
            continue
        try:
            actor = handoff.Actor(argv, env=env, label=name + " driver")
        except Exception as e:  # noqa: BLE001 - any failure to start means "not available"
            skipped[name] = "driver did not start: %s" % e
            continue
        caps = actor.capabilities
        try:
            if "clock" not in caps:
                skipped[name] = "driver lacks the clock capability (has %s)" % sorted(caps)
                continue
            ns = tempfile.mkdtemp(prefix="xlock-bench-probe-")
            try:  # one real round, so a driver that has not fully landed is skipped, not a failure
                uses_semaphore("l", ns, "probe")
                h = actor.call("open", kind="lock", name="probe", namespace=ns)["handle"]
                actor.call("acquire", handle=h, timeout_ms=1000)
                actor.call("release", handle=h)
            except handoff.ActorError as e:
                skipped[name] = "driver cannot lock yet: %s" % e
                continue
            finally:
                unlink_semaphores()
                shutil.rmtree(ns, ignore_errors=True)
        finally:
            actor.close()
        drivers[name] = {"argv": argv, "env": env, "caps": caps}
    return drivers, skipped


def build_c(skipped):
    """Build libxlock and its driver (c/, into c/build/), then bench's C programs against it."""
    if os.path.exists(os.path.join(ROOT, "c", "Makefile")):
        for target in ("lib", "driver"):
            done = subprocess.run(["make", "-s", "-C", os.path.join(ROOT, "c"), target], capture_output=True,
                                  text=True)
            if done.returncode != 0:
                skipped["make -C c %s" % target] = "failed: %s" % (done.stderr.strip().splitlines() or ["?"])[-1]
    subprocess.run(["make", "-s", "-C", BENCH], check=True)
    return os.path.exists(os.path.join(ROOT, "c", "build", "libxlock.a"))


def build_ruby(skipped):
    """Build the Ruby extension in place (ruby/lib/xlock/xlock_ext.so) as `rake compile` does."""
    script = os.path.join(ROOT, "ruby", "bin", "build-ext")
    if os.path.exists(script):
        done = subprocess.run([script], capture_output=True, text=True, cwd=os.path.join(ROOT, "ruby"))
        if done.returncode != 0:
            skipped["ruby/bin/build-ext"] = "failed: %s" % (done.stderr.strip().splitlines() or ["?"])[-1]


def python_has_xlock():
    return subprocess.run([PY, "-c", "import xlock; xlock.Lock"], capture_output=True).returncode == 0


def ruby_has_xlock():
    return subprocess.run(["ruby", "-e", "require 'xlock'; XLock::Lock"], capture_output=True,
                          env=ruby_env()).returncode == 0


# ---------------------------------------------------------------------------------------------
# 1. uncontended, 5a. semaphores uncontended


def bench_uncontended(tmp, results):
    progress("uncontended: Python (raw fcntl.flock, xlock, filelock, portalocker, fasteners, semaphores)")
    ns = fresh_namespace(tmp, "unc-py")
    for kind in "lsp":
        uses_semaphore(kind, ns, "bench-uncontended")
    results["uncontended"]["python"] = run_json([PY, os.path.join(BENCH, "py_uncontended.py"), ns])
    progress("uncontended: C (raw flock, libxlock, sem_wait/sem_post)")
    ns = fresh_namespace(tmp, "unc-c")
    for kind in "lsp":
        uses_semaphore(kind, ns, "bench-uncontended-c")
    results["uncontended"]["c"] = run_json([os.path.join(BENCH, "build", "uncontended"), ns])
    progress("uncontended: Ruby (raw File#flock, XLock)")
    ns = fresh_namespace(tmp, "unc-rb")
    for kind in "lsp":
        uses_semaphore(kind, ns, "bench-uncontended-rb")
    results["uncontended"]["ruby"] = run_json(["ruby", os.path.join(BENCH, "rb_uncontended.rb"), ns],
                                              env=ruby_env())


# ---------------------------------------------------------------------------------------------
# 2. hand-off, 3. timed wake-up, 5b. semaphore hand-off


def actor_argv(impl):
    if impl == "raw-c":
        return [os.path.join(BENCH, "build", "raw_actor")]
    if impl == "raw-c-recheck":
        return [os.path.join(BENCH, "build", "raw_actor"), "recheck"]
    if impl == "raw-ruby":
        return ["ruby", os.path.join(BENCH, "rb_actor.rb")]
    return [PY, os.path.join(BENCH, "actor.py"), impl]


class Config:
    """One ping-pong configuration: a row of a table, measured in one or more sessions."""

    def __init__(self, table, row, argv_a, argv_b, rounds, sessions=1, env=None, **ping):
        self.table, self.row, self.argv_a, self.argv_b = table, row, argv_a, argv_b
        self.rounds, self.sessions, self.env, self.ping = rounds, sessions, env, ping
        self.delays, self.a_to_b, self.b_to_a = [], [], []


def run_configs(configs, ns):
    """Run every configuration's sessions interleaved: session 1 of all, then session 2 of all, ...

    So a baseline and the rows compared with it are sampled across the same stretch of time, and a
    burst of background load hits them alike. A row's figures are over all its sessions' rounds.
    """
    for session in range(max(c.sessions for c in configs)):
        for c in configs:
            if session >= c.sessions:
                continue
            progress("%s: %s, session %d/%d, %d rounds" % (c.table, c.row.get("pair"), session + 1, c.sessions,
                                                          c.rounds))
            delays = handoff.ping_pong(c.argv_a, c.argv_b, ns, c.rounds, env=c.env, **c.ping)
            c.delays += delays
            c.a_to_b += delays[0::2]  # A releases first, then the roles alternate
            c.b_to_a += delays[1::2]
    for c in configs:
        c.row.update(handoff.summarize(c.delays), sessions=c.sessions,
                     median_a_to_b_us=statistics.median(c.a_to_b) / 1000.0 if c.a_to_b else None,
                     median_b_to_a_us=statistics.median(c.b_to_a) / 1000.0 if c.b_to_a else None)
        c.table_rows.append(c.row)


def driver_pairs(drivers, cap=None):
    names = sorted(d for d in drivers if cap is None or cap in drivers[d]["caps"])
    for a, b in itertools.combinations_with_replacement(names, 2):
        yield "%s <-> %s" % (a, b), drivers[a], drivers[b]


WAKEUP_PAUSE_MS = (5.0, 45.0)


def handoff_configs(results, drivers, quick, ns):
    """Sections 2 (hand-off), 3 (timed wake-up) and 5b (semaphore hand-off), all in namespace ns."""
    fast, sessions = (10, 1) if quick else (100, 5)  # kernel-speed hand-offs: rounds x sessions
    slow = 3 if quick else 10  # polling peers: one session
    configs = []

    def add(section, row, argv_a, argv_b, rounds, sessions=1, env=None, **ping):
        ping.setdefault("name", "ho-%d" % len(configs))  # each row its own lock (and doorbell)
        kind = ping.get("kind", "lock")
        uses_semaphore({"lock": "l", "semaphore": "s", "posix_semaphore": "p"}[kind], ns, ping["name"])
        c = Config(section, row, argv_a, argv_b, rounds, sessions, env, **ping)
        c.table_rows = results[section]
        configs.append(c)

    ho = "handoff"
    add(ho, dict(pair="raw flock(2), C", kind="baseline", mode="blocking"), actor_argv("raw-c"),
        actor_argv("raw-c"), fast, sessions)
    add(ho, dict(pair="raw flock(2) + XL-LOCK-8 re-check (spec floor), C", kind="floor", mode="blocking"),
        actor_argv("raw-c-recheck"), actor_argv("raw-c-recheck"), fast, sessions)
    add(ho, dict(pair="raw fcntl.flock, Python", kind="floor", mode="blocking"), actor_argv("raw"),
        actor_argv("raw"), fast, sessions)
    add(ho, dict(pair="raw fcntl.flock + XL-LOCK-8 re-check (spec floor), Python", kind="floor",
                 mode="blocking"), actor_argv("raw-recheck"), actor_argv("raw-recheck"), fast, sessions)
    add(ho, dict(pair="raw File#flock, Ruby", kind="floor", mode="blocking"), actor_argv("raw-ruby"),
        actor_argv("raw-ruby"), fast, sessions)
    add(ho, dict(pair="portalocker (LOCK_EX, blocking flock)", kind="peer", mode="blocking"),
        actor_argv("portalocker"), actor_argv("portalocker"), fast, sessions)
    for impl, label in (("fasteners", "fasteners (polls 10-100 ms)"), ("filelock", "filelock (polls 50 ms)")):
        add(ho, dict(pair=label, kind="peer", mode="blocking"), actor_argv(impl), actor_argv(impl), slow)
    for mode, timeout in (("blocking", None), ("timed", 10000)):
        for pair, da, db in driver_pairs(drivers):
            add(ho, dict(pair=pair, kind="xlock", mode=mode), da["argv"], db["argv"], fast, sessions,
                env=da["env"] or db["env"], timeout_ms=timeout)
    for impl, label, rounds in (("portalocker", "portalocker (LOCK_NB, polls 250 ms)", 3 if quick else 5),
                                ("fasteners", "fasteners (polls 10-100 ms)", slow),
                                ("filelock", "filelock (polls 50 ms)", slow)):
        add(ho, dict(pair=label, kind="peer", mode="timed"), actor_argv(impl), actor_argv(impl), rounds,
            timeout_ms=10000)

    wk, wr, ws = "wakeup", (6 if quick else 12), (1 if quick else 3)
    add(wk, dict(pair="raw flock(2), C, blocking", kind="baseline"), actor_argv("raw-c"), actor_argv("raw-c"), wr,
        ws, pause_ms=WAKEUP_PAUSE_MS)
    for impl, label in (("raw-c-recheck", "raw flock(2) + XL-LOCK-8 re-check (spec floor), C, blocking"),
                        ("raw", "raw fcntl.flock, Python, blocking"),
                        ("raw-recheck", "raw fcntl.flock + XL-LOCK-8 re-check (spec floor), Python, blocking")):
        add(wk, dict(pair=label, kind="floor"), actor_argv(impl), actor_argv(impl), wr, ws, pause_ms=WAKEUP_PAUSE_MS)
    for pair, da, db in driver_pairs(drivers):
        add(wk, dict(pair=pair, kind="xlock"), da["argv"], db["argv"], wr, ws, env=da["env"] or db["env"],
            timeout_ms=10000, pause_ms=WAKEUP_PAUSE_MS)
    for impl, label, rounds in (("filelock", "filelock (polls 50 ms)", 3 if quick else 10),
                                ("portalocker", "portalocker (polls 250 ms)", 2 if quick else 6),
                                ("fasteners", "fasteners (polls 10-100 ms)", 3 if quick else 10)):
        add(wk, dict(pair=label, kind="peer"), actor_argv(impl), actor_argv(impl), rounds, timeout_ms=10000,
            pause_ms=WAKEUP_PAUSE_MS)

    sm = "semaphore_handoff"
    for mode, timeout in (("blocking", None), ("timed", 10000)):
        add(sm, dict(pair="posix_ipc", kind="baseline", mode=mode), actor_argv("posix_ipc"),
            actor_argv("posix_ipc"), fast, sessions, timeout_ms=timeout, kind="posix_semaphore",
            name="sem-%d-%s" % (os.getpid(), mode))
        SEMAPHORES.pop()  # posix_ipc's own name, not xlock's; unlinked by bench_handoffs
    for kind in ("semaphore", "posix_semaphore"):
        for mode, timeout in (("blocking", None), ("timed", 10000)):
            for pair, da, db in driver_pairs(drivers, kind):
                add(sm, dict(pair=pair, kind=kind, mode=mode), da["argv"], db["argv"], fast, sessions,
                    env=da["env"] or db["env"], timeout_ms=timeout, kind=kind)
    return configs


def bench_handoffs(tmp, results, drivers, quick):
    ns = fresh_namespace(tmp, "ho")
    configs = handoff_configs(results, drivers, quick, ns)
    try:
        run_configs(configs, ns)
    finally:
        for mode in ("blocking", "timed"):
            handoff.unlink_posix_semaphore("/xlbench-sem-%d-%s" % (os.getpid(), mode))


# ---------------------------------------------------------------------------------------------
# 4. contention


def contention_workers(impl, ns, counter, count):
    """argv for one worker of impl ("c-raw", "python-xlock", ...), locking one lock in ns."""
    lang, kind = impl.split("-", 1)
    prog = {"c": [os.path.join(BENCH, "build", "contend")],
            "python": [PY, os.path.join(BENCH, "py_contend.py")],
            "ruby": ["ruby", os.path.join(BENCH, "rb_contend.rb")]}[lang]
    if kind == "raw":
        return prog + ["raw", os.path.join(ns, "contended.lock"), counter, str(count)]
    return prog + ["xlock", ns, "contended", counter, str(count)]


def contend_once(impl, nproc, count, tmp):
    ns = fresh_namespace(tmp, "ct")
    uses_semaphore("l", ns, "contended")
    counter = os.path.join(ns, "counter")
    open(counter, "w").close()
    env = ruby_env() if impl.startswith("ruby") else None
    # One start gate for all: every worker reads the same pipe, and closing its write end wakes them
    # all at once (end of file), so the rounds really overlap.
    gate_r, gate_w = os.pipe()
    try:
        procs = [subprocess.Popen(contention_workers(impl, ns, counter, count), stdin=gate_r,
                                  stdout=subprocess.PIPE, text=True, env=env) for _ in range(nproc)]
    finally:
        os.close(gate_r)
    try:
        for p in procs:
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("%s worker failed to start (status %s)" % (impl, p.wait()))
        os.close(gate_w)
        gate_w = None
        outs = []
        for p in procs:
            line = p.stdout.readline()
            if p.wait() != 0 or not line:
                raise RuntimeError("%s worker failed (status %s)" % (impl, p.returncode))
            outs.append(json.loads(line))
    finally:
        if gate_w is not None:
            os.close(gate_w)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    with open(counter) as f:
        final = int(f.read() or "0")
    expected = nproc * count
    if final != expected:
        raise AssertionError("CONTENTION LOST COUNTS: %s with %d processes ended at %d, expected %d"
                             % (impl, nproc, final, expected))
    span = max(o["end_ns"] for o in outs) - min(o["start_ns"] for o in outs)
    return {"ops_per_s": expected / (span / 1e9), "max_wait_ms": max(o["max_wait_ns"] for o in outs) / 1e6,
            "final": final, "expected": expected}


def bench_contention(tmp, results, impls, quick):
    """Every (implementation, processes) configuration once per repeat, repeats interleaved."""
    repeats = 1 if quick else 5
    total = {"c": 100000, "python": 40000, "ruby": 40000}
    configs = [(impl, nproc) for impl in impls for nproc in (2, 4, 8)]
    runs = {cfg: [] for cfg in configs}
    counts = {}
    for rep in range(repeats):
        for impl, nproc in configs:
            lang = impl.split("-", 1)[0]
            count = counts[(impl, nproc)] = max(1, (total[lang] // (10 if quick else 1)) // nproc)
            progress("contention: %s, %d processes x %d rounds, repeat %d/%d" % (impl, nproc, count, rep + 1, repeats))
            runs[(impl, nproc)].append(contend_once(impl, nproc, count, tmp))
    for impl, nproc in configs:
        done = runs[(impl, nproc)]
        results["contention"].append({
            "impl": impl, "nproc": nproc, "rounds_per_process": counts[(impl, nproc)], "repeats": repeats,
            "ops_per_s": statistics.median(r["ops_per_s"] for r in done),
            "max_wait_ms": max(r["max_wait_ms"] for r in done),
            "final": [r["final"] for r in done], "expected": done[0]["expected"]})


# ---------------------------------------------------------------------------------------------


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_idle(max_seconds):
    """Wait up to max_seconds for the 1-minute load average to drop below 0.5 (other jobs to finish)."""
    deadline = time.monotonic() + max_seconds
    while loadavg() >= 0.5 and time.monotonic() < deadline:
        time.sleep(5)


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "python": platform.python_version()}


def write_readme_section(section):
    """Replace the README's "## Benchmarks" section (up to the next "## " heading) or append it."""
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        lines = f.read().splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == "## Benchmarks"), None)
    if start is None:
        text = "".join(lines).rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        rest = "".join(lines[end:])
        text = "".join(lines[:start]) + section + ("\n" + rest if rest else "")
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few rounds: a smoke run, not figures to quote")
    ap.add_argument("--out", default=os.path.join(BENCH, "results"), help="directory for latest.md/.json")
    ap.add_argument("--readme", action="store_true",
                    help="also replace the Benchmarks section at the end of the top-level README.md")
    ap.add_argument("--wait-idle", type=float, default=0, metavar="S",
                    help="first wait up to S seconds for the load average to fall below 0.5")
    args = ap.parse_args()
    if args.wait_idle:
        progress("waiting up to %.0f s for an idle machine (load %.2f)" % (args.wait_idle, loadavg()))
        wait_idle(args.wait_idle)
    started = time.monotonic()
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
               "command": "tox -e bench" + (" -- --quick" if args.quick else ""), "quick": args.quick,
               "skipped": {}, "uncontended": {}, "handoff": [], "wakeup": [], "semaphore_handoff": [],
               "contention": [], "load_before": loadavg()}
    have_libxlock = build_c(results["skipped"])
    build_ruby(results["skipped"])
    drivers, skipped = probe_drivers()
    results["skipped"].update({"%s driver" % k: v for k, v in skipped.items()})
    if not have_libxlock:
        results["skipped"]["libxlock"] = "c/build/libxlock.a is not built"
    py_x, rb_x = python_has_xlock(), ruby_has_xlock()
    if not py_x:
        results["skipped"]["python xlock"] = "import xlock failed"
    if not rb_x:
        results["skipped"]["ruby xlock"] = "require 'xlock' failed"
    progress("drivers: %s; skipped: %s" % (sorted(drivers), results["skipped"] or "none"))
    tmp = tempfile.mkdtemp(prefix="xlock-bench-")
    try:
        bench_uncontended(tmp, results)
        bench_handoffs(tmp, results, drivers, args.quick)
        impls = ["c-raw"] + (["c-xlock"] if have_libxlock else []) + ["python-raw"] + \
            (["python-xlock"] if py_x else []) + ["ruby-raw"] + (["ruby-xlock"] if rb_x else [])
        bench_contention(tmp, results, impls, args.quick)
    finally:
        unlink_semaphores()
        shutil.rmtree(tmp, ignore_errors=True)
    results["seconds"] = round(time.monotonic() - started, 1)
    results["load_after"] = loadavg()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump(results, f, indent=1)
    md = report.markdown(results)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(md)
    print(md)
    if args.readme:
        write_readme_section(report.readme_section(results))
        progress("updated the Benchmarks section of %s" % os.path.join(ROOT, "README.md"))
    progress("done in %.0f s: %s" % (results["seconds"], os.path.join(args.out, "latest.md")))


if __name__ == "__main__":
    main()
