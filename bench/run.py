"""Run every xlock benchmark and write bench/results/latest.md and latest.json.

    python bench/run.py            # the full run (tox -e bench runs this), a few minutes on 2 cores
    python bench/run.py --quick    # a smoke run with few rounds, to check that everything works

Every figure is a ratio against a baseline measured in the same run; see bench/README.md.
A binding whose driver or library is not built is reported as skipped, never silently left out.
"""

import argparse
import json
import os
import shutil
import tempfile
import time

import environment
import pg
import report
from common import BENCH, ROOT, progress, unlink_semaphores
from section_contention import bench_contention
from section_handoff import bench_handoffs
from section_uncontended import bench_uncontended


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
        progress("waiting up to %.0f s for an idle machine (load %.2f)" % (args.wait_idle, environment.loadavg()))
        environment.wait_idle(args.wait_idle)
    started = time.monotonic()
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": environment.machine(),
               "command": "tox -e bench" + (" -- --quick" if args.quick else ""), "quick": args.quick,
               "skipped": {}, "uncontended": {}, "handoff": [], "wakeup": [], "semaphore_handoff": [],
               "contention": [], "load_before": environment.loadavg(), "commit": environment.checkout()}
    have_libxlock = environment.build_c(results["skipped"])
    environment.build_ruby(results["skipped"])
    drivers, skipped = environment.probe_drivers()
    results["skipped"].update({"%s driver" % k: v for k, v in skipped.items()})
    if not have_libxlock:
        results["skipped"]["libxlock"] = "c/build/libxlock.a is not built"
    py_x, rb_x = environment.python_has_xlock(), environment.ruby_has_xlock()
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
        progress("PostgreSQL namespaces (bench/pg.py)")
        results["pg"] = pg.bench_pg(args.quick)
    finally:
        unlink_semaphores()
        shutil.rmtree(tmp, ignore_errors=True)
    results["seconds"] = round(time.monotonic() - started, 1)
    results["load_after"] = environment.loadavg()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump(results, f, indent=1)
    md = report.markdown(results) + pg.markdown(results.get("pg"))
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(md)
    print(md)
    if args.readme:
        write_readme_section(report.readme_section(results))
        progress("updated the Benchmarks section of %s" % os.path.join(ROOT, "README.md"))
    progress("done in %.0f s: %s" % (results["seconds"], os.path.join(args.out, "latest.md")))


if __name__ == "__main__":
    main()
