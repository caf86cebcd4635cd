"""Sections 1 and 5a: uncontended acquire+release, run by one program per language."""

import os

from common import BENCH, PY, fresh_namespace, progress, ruby_env, run_json, uses_semaphore


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
