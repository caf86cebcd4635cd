"""The PostgreSQL cases have teeth: the Python driver passes them all, and each planted defect of
XLOCK_TEST_PG_DEFECT (a test-only switch of the Python binding) is caught by the case meant for it."""

from __future__ import annotations

import shlex
import sys

import pytest
from test_teeth import PAIR, run_suite

PY = f"{shlex.quote(sys.executable)} -m xlock.driver"

# defect -> (cases to run, [(case, column, words the failure must contain)])
DEFECTS = {
    # 32-bit keys, as hashtext or an int4 pair would give: the key vectors disagree [XL-PG-3].
    "int4-keys": (["pg_map"], [("pg_map", "bad", "[XL-PG-3]")]),
    # Two objects of one process on one session: PostgreSQL's re-entrancy merges them [XL-PG-5].
    "shared-session": (["pg_lock_exclusive"], [("pg_lock_exclusive", f"bad{PAIR}bad", "WOULD_BLOCK")]),
    # Timeout 0 as lock_timeout = 0, which means "no timeout": the waiter blocks [XL-PG-7].
    "lock-timeout-zero": (["pg_timeout_zero"], [("pg_timeout_zero", f"bad{PAIR}bad", "did not reply")]),
    # The capacity marker left to the asynchronous end of the session at close [XL-PG-13].
    "close-marker-async": (
        ["pg_semaphore_close"],
        [("pg_semaphore_close", "bad", "marker was not given back")],
    ),
}


def test_python_driver_passes_every_pg_case(tmp_path):
    code, out, results = run_suite(tmp_path, {"py": PY}, runs=["pg_*"])
    bad = {k: v for k, v in results.items() if v[0] != "pass"}
    assert not bad and results, f"the Python driver does not pass every PostgreSQL case:\n{out[-4000:]}"
    assert code == 0, out[-2000:]


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_pg_defect_is_caught(tmp_path, defect):
    runs, expected = DEFECTS[defect]
    bad = f"env XLOCK_TEST_PG_DEFECT={defect} {PY}"
    code, out, results = run_suite(tmp_path, {"bad": bad}, runs=runs)
    assert code != 0, f"defect {defect} went unnoticed:\n{out[-3000:]}"
    for case, column, words in expected:
        outcome, text = results.get((case, column), ("missing", ""))
        assert outcome == "FAIL", f"defect {defect}: {case}[{column}] is {outcome}, not FAIL:\n{out[-3000:]}"
        assert words in text, f"defect {defect}: {case}[{column}] failed without {words!r}:\n{text[-2000:]}"
