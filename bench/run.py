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
                h = actor.call("open", kind="lock", name="probe", namespace=ns)["handle"]
                actor.call("acquire", handle=h, timeout_ms=1000)
                actor.call("release", handle=h)
            except handoff.ActorError as e:
                skipped[name] = "driver cannot lock yet: %s" % e
                continue
            finally:
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


def python_has_xlock():
    return subprocess.run([PY, "-c", "import xlock; xlock.Lock"], capture_output=True).returncode == 0


def ruby_has_xlock():
    return subprocess.run(["ruby", "-e", "require 'xlock'; XLock::Lock"], capture_output=True,
                          env=ruby_env()).returncode == 0


# ---------------------------------------------------------------------------------------------
# 1. uncontended, 5a. semaphores uncontended


def bench_uncontended(tmp, results):
    progress("uncontended: Python (raw fcntl.flock, xlock, filelock, portalocker, fasteners, semaphores)")
    results["uncontended"]["python"] = run_json([PY, os.path.join(BENCH, "py_uncontended.py"),
                                                 fresh_namespace(tmp, "unc-py")])
    progress("uncontended: C (raw flock, libxlock, sem_wait/sem_post)")
    results["uncontended"]["c"] = run_json([os.path.join(BENCH, "build", "uncontended"),
                                            fresh_namespace(tmp, "unc-c")])
    progress("uncontended: Ruby (raw File#flock, XLock)")
    results["uncontended"]["ruby"] = run_json(["ruby", os.path.join(BENCH, "rb_uncontended.rb"),
                                               fresh_namespace(tmp, "unc-rb")], env=ruby_env())


# ---------------------------------------------------------------------------------------------
# 2. hand-off, 3. timed wake-up, 5b. semaphore hand-off


def actor_argv(impl):
    if impl == "raw-c":
        return [os.path.join(BENCH, "build", "raw_actor")], None
    return [PY, os.path.join(BENCH, "actor.py"), impl], None


def bench_handoff(tmp, results, drivers, quick):
    r = 20 if quick else 300  # rounds for kernel-speed hand-offs
    slow = 3 if quick else 10  # rounds for polling peers
    rows = results["handoff"]
    baselines = [("raw-c", "raw flock(2), C", r), ("raw", "raw fcntl.flock, Python", r),
                 ("portalocker", "portalocker (LOCK_EX, blocking flock)", r),
                 ("fasteners", "fasteners (polls 10-100 ms)", slow), ("filelock", "filelock (polls 50 ms)", slow)]
    for impl, label, rounds in baselines:
        progress("hand-off, blocking: %s x%d" % (label, rounds))
        argv, env = actor_argv(impl)
        rows.append(dict(pair=label, kind="baseline", mode="blocking",
                         **handoff.ping_pong(argv, argv, fresh_namespace(tmp, "ho"), rounds, env=env)))
    for mode, timeout in (("blocking", None), ("timed", 10000)):
        for a, b in itertools.combinations_with_replacement(sorted(drivers), 2):
            da, db = drivers[a], drivers[b]
            progress("hand-off, %s: %s <-> %s x%d" % (mode, a, b, r))
            env = da["env"] or db["env"]
            rows.append(dict(pair="%s <-> %s" % (a, b), kind="xlock", mode=mode,
                             **handoff.ping_pong(da["argv"], db["argv"], fresh_namespace(tmp, "ho"), r,
                                                 timeout_ms=timeout, env=env)))
    for impl, label, rounds in (("portalocker", "portalocker (LOCK_NB, polls 250 ms)", 3 if quick else 5),
                                ("fasteners", "fasteners (polls 10-100 ms)", slow),
                                ("filelock", "filelock (polls 50 ms)", slow)):
        progress("hand-off, timed: %s x%d" % (label, rounds))
        argv, env = actor_argv(impl)
        rows.append(dict(pair=label, kind="peer", mode="timed",
                         **handoff.ping_pong(argv, argv, fresh_namespace(tmp, "ho"), rounds, timeout_ms=10000)))


WAKEUP_PAUSE_MS = (5.0, 45.0)


def bench_wakeup(tmp, results, drivers, quick):
    rows = results["wakeup"]
    r = 6 if quick else 25
    argv, _ = actor_argv("raw-c")
    progress("timed wake-up: raw flock(2) C (blocking, for reference) x%d" % r)
    rows.append(dict(pair="raw flock(2), C, blocking", kind="baseline",
                     **handoff.ping_pong(argv, argv, fresh_namespace(tmp, "wk"), r, pause_ms=WAKEUP_PAUSE_MS)))
    for a, b in itertools.combinations_with_replacement(sorted(drivers), 2):
        da, db = drivers[a], drivers[b]
        progress("timed wake-up: %s <-> %s x%d" % (a, b, r))
        rows.append(dict(pair="%s <-> %s" % (a, b), kind="xlock",
                         **handoff.ping_pong(da["argv"], db["argv"], fresh_namespace(tmp, "wk"), r,
                                             timeout_ms=10000, pause_ms=WAKEUP_PAUSE_MS,
                                             env=da["env"] or db["env"])))
    for impl, label, rounds in (("filelock", "filelock (polls 50 ms)", 3 if quick else 10),
                                ("portalocker", "portalocker (polls 250 ms)", 2 if quick else 6),
                                ("fasteners", "fasteners (polls 10-100 ms)", 3 if quick else 10)):
        progress("timed wake-up: %s x%d" % (label, rounds))
        argv, _ = actor_argv(impl)
        rows.append(dict(pair=label, kind="peer",
                         **handoff.ping_pong(argv, argv, fresh_namespace(tmp, "wk"), rounds, timeout_ms=10000,
                                             pause_ms=WAKEUP_PAUSE_MS)))


def bench_semaphore_handoff(tmp, results, drivers, quick):
    rows = results["semaphore_handoff"]
    r = 20 if quick else 300
    argv, _ = actor_argv("posix_ipc")
    for mode, timeout in (("blocking", None), ("timed", 10000)):
        progress("semaphore hand-off, %s: posix_ipc x%d" % (mode, r))
        rows.append(dict(pair="posix_ipc", kind="baseline", mode=mode,
                         **handoff.ping_pong(argv, argv, fresh_namespace(tmp, "sm"), r, timeout_ms=timeout,
                                             kind="posix_semaphore", name="sem-%d" % os.getpid())))
        handoff.unlink_posix_semaphore("/xlbench-sem-%d" % os.getpid())
    for kind, cap in (("semaphore", "semaphore"), ("posix_semaphore", "posix_semaphore")):
        have = sorted(d for d in drivers if cap in drivers[d]["caps"])
        for mode, timeout in (("blocking", None), ("timed", 10000)):
            for a, b in itertools.combinations_with_replacement(have, 2):
                da, db = drivers[a], drivers[b]
                progress("semaphore hand-off, %s %s: %s <-> %s x%d" % (kind, mode, a, b, r))
                rows.append(dict(pair="%s <-> %s" % (a, b), kind=kind, mode=mode,
                                 **handoff.ping_pong(da["argv"], db["argv"], fresh_namespace(tmp, "sm"), r,
                                                     timeout_ms=timeout, kind=kind,
                                                     name="sem-%d-%s%s" % (os.getpid(), a, b),
                                                     env=da["env"] or db["env"])))


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
    rows = results["contention"]
    repeats = 1 if quick else 3
    total = {"c": 100000, "python": 40000, "ruby": 40000}
    for impl in impls:
        lang = impl.split("-", 1)[0]
        for nproc in (2, 4, 8):
            count = max(1, (total[lang] // (10 if quick else 1)) // nproc)
            progress("contention: %s, %d processes x %d rounds, %d repeats" % (impl, nproc, count, repeats))
            runs = [contend_once(impl, nproc, count, tmp) for _ in range(repeats)]
            rows.append({"impl": impl, "nproc": nproc, "rounds_per_process": count, "repeats": repeats,
                         "ops_per_s": statistics.median(r["ops_per_s"] for r in runs),
                         "max_wait_ms": max(r["max_wait_ms"] for r in runs),
                         "final": [r["final"] for r in runs], "expected": runs[0]["expected"]})


# ---------------------------------------------------------------------------------------------


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "python": platform.python_version()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few rounds: a smoke run, not figures to quote")
    ap.add_argument("--out", default=os.path.join(BENCH, "results"), help="directory for latest.md/.json")
    args = ap.parse_args()
    started = time.monotonic()
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
               "command": "tox -e bench" + (" -- --quick" if args.quick else ""), "quick": args.quick,
               "skipped": {}, "uncontended": {}, "handoff": [], "wakeup": [], "semaphore_handoff": [],
               "contention": []}
    have_libxlock = build_c(results["skipped"])
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
        bench_handoff(tmp, results, drivers, args.quick)
        bench_wakeup(tmp, results, drivers, args.quick)
        bench_semaphore_handoff(tmp, results, drivers, args.quick)
        impls = ["c-raw"] + (["c-xlock"] if have_libxlock else []) + ["python-raw"] + \
            (["python-xlock"] if py_x else []) + ["ruby-raw"] + (["ruby-xlock"] if rb_x else [])
        bench_contention(tmp, results, impls, args.quick)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["seconds"] = round(time.monotonic() - started, 1)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump(results, f, indent=1)
    md = report.markdown(results)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(md)
    print(md)
    progress("done in %.0f s: %s" % (results["seconds"], os.path.join(args.out, "latest.md")))


if __name__ == "__main__":
    main()
