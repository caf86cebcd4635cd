"""spec/vectors/names.json and errors.json, reproduced exactly [XL-SEM-6, XL-SEM-7, XL-ERR-1]."""

from __future__ import annotations

import builtins
import json
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import load_vectors, run_python

import xlock
from xlock import names

NAMES = load_vectors("names.json")
ERRORS = load_vectors("errors.json")
NAMESPACES = {n["id"]: (n["dev"], n["ino"]) for n in NAMES["namespaces"]}


def case_name(case: dict[str, Any]) -> str:
    if case["name"] is not None:
        return str(case["name"])
    return bytes.fromhex(case["name_utf8_hex"]).decode("utf-8", "surrogatepass")  # lone surrogates


@pytest.mark.parametrize("case", NAMES["cases"], ids=lambda c: c["description"])
def test_name_vector(case: dict[str, Any]) -> None:
    name = case_name(case)
    if not case["valid"]:
        with pytest.raises(xlock.InvalidName) as info:
            names.validate_name(name)
        rule = [r for r in case["spec"] if r != "XL-NAME-3"] or ["XL-NAME-3"]
        assert str(info.value).startswith(rule[0])
        for fn in (names.lock_file_name, names.capacity_file_name):
            with pytest.raises(xlock.InvalidName):
                fn(name)
        with pytest.raises(xlock.InvalidName):
            names.semaphore_name("p", 1, 2, name)
        with pytest.raises(xlock.InvalidName):  # the name is checked before the kind [XL-NAME-6]
            names.bell_word("x", name)
        return
    names.validate_name(name)
    assert names.validate_name(bytes.fromhex(case["name_utf8_hex"])) is None
    assert names.lock_file_name(name) == case["lock_file"]
    assert names.capacity_file_name(name) == case["capacity_file"]
    for index, file_name in case["slot_files"].items():
        assert names.slot_file_name(name, int(index)) == file_name
    for ns_id, sems in case["semaphores"].items():
        dev, ino = NAMESPACES[ns_id]
        for kind, sem in sems.items():
            assert names.semaphore_name(kind, dev, ino, name) == sem
    for kind, word in case["bell_words"].items():
        assert xlock.bell_word(kind, name) == word
    encoded = names.EncodedName(name)  # the one value every object works from
    assert (encoded.lock_file, encoded.capacity_file) == (case["lock_file"], case["capacity_file"])
    assert {k: encoded.bell_word(k) for k in "ls"} == case["bell_words"]


@pytest.mark.parametrize("case", [c for c in NAMES["cases"] if c["valid"]], ids=lambda c: c["description"])
def test_file_stem_decodes_back(case: dict[str, Any]) -> None:
    from conftest import decode_file_stem

    assert decode_file_stem(case["lock_file"][: -len(".lock")]) == bytes.fromhex(case["name_utf8_hex"])


def test_ill_formed_utf8_bytes_are_invalid_names() -> None:
    for raw in (b"\xff", b"a\xc3", b"\xed\xa0\x80"):
        with pytest.raises(xlock.InvalidName, match="XL-NAME-3"):
            names.validate_name(raw)


def test_bad_mapping_arguments() -> None:
    with pytest.raises(xlock.InvalidArgument):
        names.semaphore_name("x", 1, 2, "a")
    with pytest.raises(xlock.InvalidArgument):
        names.semaphore_name("p", -1, 2, "a")
    for withdrawn in ("l", "s"):  # draft 1's doorbells [XL-SEM-2]
        with pytest.raises(xlock.InvalidArgument):
            names.semaphore_name(withdrawn, 1, 2, "a")
    with pytest.raises(xlock.InvalidArgument):
        names.bell_word("p", "a")
    with pytest.raises(xlock.InvalidArgument):
        names.slot_file_name("a", 1000)
    with pytest.raises(xlock.InvalidName):
        names.validate_name(42)  # type: ignore[arg-type]


def test_namespace_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    default = f"/tmp/xlock-{os.geteuid()}"
    assert names.default_namespace_path() == default
    assert names.resolve_namespace_path(None) == default
    monkeypatch.setenv("XLOCK_NAMESPACE", "/run/lock/app")
    monkeypatch.setenv("TMPDIR", "/elsewhere")
    assert names.resolve_namespace_path(None) == "/run/lock/app"
    assert names.resolve_namespace_path("/explicit") == "/explicit"
    monkeypatch.setenv("XLOCK_NAMESPACE", "")
    assert names.resolve_namespace_path(None) == default
    for bad in ("", "relative/dir", "/a\0b"):
        with pytest.raises(xlock.InvalidArgument):
            names.resolve_namespace_path(bad)
    # trailing slashes go, nothing else is normalised [XL-NS-14]
    assert names.resolve_namespace_path("/tmp/ns//") == "/tmp/ns"
    assert names.resolve_namespace_path("/") == "/"
    assert names.resolve_namespace_path("//a/./b/") == "//a/./b"


@pytest.mark.parametrize("entry", ERRORS["errors"], ids=lambda e: e["kind"])
def test_error_table(entry: dict[str, Any]) -> None:
    cls = getattr(xlock, entry["python"])
    assert cls.kind == entry["kind"]
    assert issubclass(cls, xlock.XLockError)
    assert issubclass(cls, getattr(builtins, entry["python_base"]))
    assert xlock.error_for_kind(entry["kind"]) is cls
    err = cls(5, "message") if cls is xlock.XLockOSError else cls("lock 'x' (/ns/x.lock): message")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and str(back) == str(err) and back.kind == entry["kind"]


def test_error_table_is_complete() -> None:
    assert {e["kind"] for e in ERRORS["errors"]} == {
        getattr(xlock, e["python"]).kind for e in ERRORS["errors"]
    }
    with pytest.raises(xlock.InvalidArgument):
        xlock.error_for_kind("NOPE")


def test_os_error_keeps_errno_through_pickle() -> None:
    err = xlock.XLockOSError(13, "cannot open /ns/x.lock: Permission denied")
    err.filename = "/ns/x.lock"
    back = pickle.loads(pickle.dumps(err))
    assert (back.errno, back.filename, back.kind) == (13, "/ns/x.lock", "OS_ERROR")


def test_public_api() -> None:
    # One version, written in pyproject.toml and in the package (not a hard-coded literal here).
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    if 'version = "' in pyproject:
        assert f'version = "{xlock.__version__}"' in pyproject
    assert re.fullmatch(r"\d+\.\d+\.\d+", xlock.__version__)
    assert xlock.SPEC_VERSION == "xlock/1"
    for name in xlock.__all__:
        assert hasattr(xlock, name)


def test_sha256_from_the_standard_librarys_own_module() -> None:
    # import xlock hashes with _sha2 (_sha256 before Python 3.12), not hashlib and OpenSSL (slow to load,
    # issue 14); without those modules it falls back to hashlib, with the same vectors [XL-SEM-1, XL-SEM-7].
    case = next(c for c in NAMES["cases"] if c["valid"] and c["semaphores"] and c["bell_words"])
    ns_id, sems = next(iter(case["semaphores"].items()))
    dev, ino = NAMESPACES[ns_id]
    expected = [sems["p"], case["bell_words"]["l"], case["bell_words"]["s"]]
    check = (
        "import sys, json, xlock\n"
        "from xlock import names\n"
        f"name = json.loads({json.dumps(json.dumps(case_name(case)))})\n"
        f"print(json.dumps([names.semaphore_name('p', {dev}, {ino}, name), xlock.bell_word('l', name), "
        "xlock.bell_word('s', name), 'hashlib' in sys.modules]))\n"
    )
    builtin = run_python(check)
    assert builtin.returncode == 0, builtin.stderr
    assert json.loads(builtin.stdout) == [*expected, False]
    blocked = run_python("import sys\nsys.modules['_sha2'] = sys.modules['_sha256'] = None\n" + check)
    assert blocked.returncode == 0, blocked.stderr
    assert json.loads(blocked.stdout) == [*expected, True]
