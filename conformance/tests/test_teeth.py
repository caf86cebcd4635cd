"""The suite has teeth: the reference driver passes every case; each planted defect is caught by the
case meant to catch it; drivers that hang, die or print junk fail clearly and never hang the run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# The reference driver needs only the standard library: run it with the system interpreter when there is
# one, which another uid can execute too (namespace_default_insecure runs drivers as uid 54321).
REF_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
REF = f"{shlex.quote(REF_PYTHON)} {shlex.quote(str(HERE / 'refdriver.py'))}"
FAKE = f"{shlex.quote(sys.executable)} {shlex.quote(str(HERE / 'fakedriver.py'))}"
PAIR = "\u2194"


def run_suite(tmp_path: Path, drivers: dict[str, str], runs: Sequence[str] = (), timeout: float = 150):
    """Run xlock-conformance; returns (exit code, output, {(case, column): (outcome, failure text)})."""
    junit = tmp_path / "junit.xml"
    argv = [sys.executable, "-m", "xlock_conformance", "--junit-xml", str(junit), "--repo", str(REPO)]
    for name, command in drivers.items():
        argv += ["--driver", f"{name}={command}"]
    for pattern in runs:
        argv += ["--run", pattern]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(REPO))
    results = {}
    for tc in ET.parse(junit).getroot().iter("testcase"):
        name = tc.get("name", "")
        case, _, rest = name.partition("[")
        column = rest.rstrip("]").replace("+", PAIR) if rest else "all"
        failed = tc.find("failure")
        if failed is None:
            failed = tc.find("error")
        if failed is not None:
            text = (failed.get("message") or "") + (failed.text or "")
            results[(case.removeprefix("test_"), column)] = ("FAIL", text)
        elif (skipped := tc.find("skipped")) is not None:
            results[(case.removeprefix("test_"), column)] = ("skip", skipped.get("message") or "")
        else:
            results[(case.removeprefix("test_"), column)] = ("pass", "")
    return proc.returncode, proc.stdout + proc.stderr, results


def test_reference_driver_passes_every_case(tmp_path):
    code, out, results = run_suite(tmp_path, {"ref": REF})
    bad = {k: v for k, v in results.items() if v[0] != "pass"}  # no skip either
    assert not bad, f"the correct reference driver does not pass everything:\n{out[-4000:]}"
    cases_dir = HERE.parent / "xlock_conformance" / "cases"
    # The PostgreSQL cases run only for drivers claiming `pg` (not the reference driver): test_pg_teeth.py.
    every = {
        m.group(1)
        for f in cases_dir.glob("test_*.py")
        if not f.name.startswith("test_pg")
        for m in re.finditer(r"^def test_(\w+)", f.read_text(encoding="utf-8"), re.M)
    }
    ran = {case for case, _ in results}
    assert ran == every, f"cases that did not run for the reference driver: {sorted(every - ran)}"
    assert code == 0, out[-2000:]
    skipped = sum(1 for v in results.values() if v[0] == "skip")
    assert f"passed, 0 failed, {skipped} skipped" in out.splitlines()[-1], out[-500:]


# defect -> (cases to run, [(case, column, words the failure must contain)])
DEFECTS = {
    "lockf": (
        ["flock_interop", "lock_exclusive", "lock_is_flock"],
        [
            ("flock_interop", "bad", "WOULD_BLOCK"),
            ("lock_exclusive", f"ref{PAIR}bad", "WOULD_BLOCK"),
            ("lock_is_flock", "bad", "('POSIX', 'WRITE'"),
        ],
    ),
    "name-case": (
        ["names_map", "names_files"],
        [("names_map", "bad", "!billing.lock"), ("names_files", "bad", "!billing.lock")],
    ),
    "no-bell-ring": (
        ["bell_rung"],
        [("bell_rung", f"bad{PAIR}bad", "[XL-BELL-6]"), ("bell_rung", f"ref{PAIR}bad", "[XL-BELL-6]")],
    ),
    "devshm-doorbell": (
        ["names_files", "bell_file", "file_modes"],
        [
            ("names_files", "bad", "XL-SEM-2"),
            ("bell_file", "bad", "/dev/shm"),
            ("file_modes", "bad", "/dev/shm"),
        ],
    ),
    "bell-no-size-check": (["bell_planted"], [("bell_planted", "bad", "SIGBUS")]),
    "bell-userspace-shared": (
        ["bell_truncated"],
        [("bell_truncated", f"ref{PAIR}bad", "SIGBUS"), ("bell_truncated", f"bad{PAIR}bad", "SIGBUS")],
    ),
    "flood-no-deadline": (["bell_flood"], [("bell_flood", "bad", "did not reply to acquire")]),
    "weak-recheck-shared": (
        ["shared_hardlink_remove", "shared_hardlink_waiter"],
        [
            ("shared_hardlink_remove", f"ref{PAIR}bad", "two holders"),
            ("shared_hardlink_remove", f"bad{PAIR}bad", "two holders"),
            ("shared_hardlink_waiter", f"ref{PAIR}bad", "two holders"),
            ("shared_hardlink_waiter", f"bad{PAIR}bad", "two holders"),
        ],
    ),
    "capacity-0666": (["file_modes"], [("file_modes", "bad", "m.sem has mode 0o666, want 0o644")]),
    "psem-sem-open": (["error_raw_semaphore_planted"], [("error_raw_semaphore_planted", "bad", "SIGBUS")]),
    "remove-creates": (["remove_creates_nothing"], [("remove_creates_nothing", "bad", "[XL-RM-6]")]),
    "socket-os-error": (["error_socket_fifo_dir"], [("error_socket_fifo_dir", "bad", "got OS_ERROR")]),
    "hello-any-protocol": (["protocol_exact"], [("protocol_exact", "bad", "defines protocol 1 only")]),
    "ns-reuse-unchecked": (
        ["namespace_replaced_between_objects"],
        [("namespace_replaced_between_objects", "bad", "[XL-NS-16]")],
    ),
    "no-release-on-close": (
        ["lock_close_releases"],
        [
            ("lock_close_releases", f"bad{PAIR}bad", "XL-HOLD-10"),
            ("lock_close_releases", f"ref{PAIR}bad", "XL-HOLD-10"),
        ],
    ),
    "fork-unlock": (
        ["fork_child_holds_nothing"],
        [
            ("fork_child_holds_nothing", f"bad{PAIR}bad", "'release': 'ok'"),
            ("fork_child_holds_nothing", f"ref{PAIR}bad", "'release': 'ok'"),
        ],
    ),
    "fork-keep-fd": (
        ["fork_child_holds_nothing"],
        [
            ("fork_child_holds_nothing", f"bad{PAIR}bad", "still lives"),
            ("fork_child_holds_nothing", f"ref{PAIR}bad", "still lives"),
        ],
    ),
}


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_defect_is_caught(tmp_path, defect):
    runs, expected = DEFECTS[defect]
    code, out, results = run_suite(tmp_path, {"ref": REF, "bad": f"{REF} --defect {defect}"}, runs)
    assert code == 1, f"the suite exited {code} with a broken driver:\n{out[-3000:]}"
    for case, column, words in expected:
        outcome, text = results.get((case, column), ("missing", ""))
        assert outcome == "FAIL", (
            f"--defect {defect}: {case} [{column}] is {outcome}, want FAIL:\n{out[-3000:]}"
        )
        assert words in text, (
            f"--defect {defect}: {case} [{column}] failed, but not for the planted bug:\n{text[:2000]}"
        )
    for case in runs:  # the correct driver alone still passes the same cases: the failure is the defect's
        assert (
            results[(case, "ref")][0] == "pass"
            if (case, "ref") in results
            else results[(case, f"ref{PAIR}ref")][0] == "pass"
        ), f"{case} fails for the correct driver too:\n{out[-3000:]}"


def test_broken_transport_fails_clearly(tmp_path):
    drivers = {m: f"{FAKE} {m}" for m in ("hang", "junk", "die")}
    drivers["missing"] = str(tmp_path / "no-such-driver")
    code, out, results = run_suite(tmp_path, drivers, ["protocol_bad_requests"], timeout=60)
    assert code == 1, out[-2000:]
    want = {
        "hang": "did not reply to",
        "junk": "printed a line that is not JSON on stdout: 'debug: got",
        "die": "exit status 3",
        "missing": "could not be started",
    }
    for name, words in want.items():
        outcome, text = results[("protocol_bad_requests", name)]
        assert outcome == "FAIL" and words in text, f"{name}: {outcome}: {text[:1500]}"
    assert "it is blocked or hung" in results[("protocol_bad_requests", "hang")][1]
    assert "fake driver: giving up on purpose" in results[("protocol_bad_requests", "die")][1]
    assert "FAIL protocol_bad_requests [hang]" in out and "0 passed, 4 failed, 0 skipped" in out


def test_bundled_drivers_pass_or_skip_with_a_reason(tmp_path):
    # Without --driver the bundled drivers run; a missing one is skipped with a message, never failed.
    # (A case every draft of the protocol shares, so the check does not wait for the bindings' updates.)
    _, _, results = run_suite(tmp_path, {}, ["protocol_bad_requests"], timeout=300)
    for (case, column), (outcome, text) in results.items():
        assert outcome in ("pass", "skip"), f"{case} [{column}]: {outcome}: {text[:1500]}"
        if outcome == "skip":
            assert "unavailable" in text, text


def test_list_shows_cases_with_spec_ids():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "xlock_conformance", "--list", "--repo", str(REPO)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lock_exclusive" in proc.stdout and "XL-LOCK-7" in proc.stdout
    assert "MUST requirements of spec/xlock-1.md without a case" in proc.stdout
