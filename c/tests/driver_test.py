#!/usr/bin/env python3
"""The conformance driver build/xlock-driver, end to end over its pipes (conformance/PROTOCOL.md).

Usage: driver_test.py DRIVER VECTORS_DIR. Prints "N passed, 0 failed"; exit status 1 on a failure.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

DRIVER, VECTORS = sys.argv[1], sys.argv[2]
results = {"passed": 0, "failed": 0}


class Driver:
    def __init__(self, env=None):
        self.p = subprocess.Popen([DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.next_id = 0

    def raw(self, line):
        self.p.stdin.write(line.encode("utf-8") + b"\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def __call__(self, op, **args):
        self.next_id += 1
        req = {"id": self.next_id, "op": op, **args}
        reply = self.raw(json.dumps(req))
        assert reply["id"] == self.next_id, reply
        return reply

    def close(self):
        self.p.stdin.close()
        return self.p.wait(timeout=10)


def case(fn):
    try:
        fn()
        results["passed"] += 1
        print("ok   driver_test.%s" % fn.__name__)
    except Exception as exc:  # noqa: BLE001 - report any failure of the case
        results["failed"] += 1
        print("FAIL driver_test.%s: %r" % (fn.__name__, exc))


def err(reply, kind):
    assert reply["ok"] is False and reply["error"] == kind, reply
    assert isinstance(reply["message"], str) and reply["message"], reply


def hello_and_eof():
    d = Driver()
    r = d("hello", protocol=1)
    assert r["ok"] and r["implementation"] == "c" and r["spec"] == "xlock/1" and r["protocol"] == 1
    # "pg" when the driver is linked with libxlock_pg (c/pg, libpq present)
    assert set(r["capabilities"]) - {"pg"} == {"lock", "shared", "timeout", "reentrant", "semaphore",
                                      "posix_semaphore", "map", "remove", "counter", "clock", "fork"}
    assert r["pid"] == d.p.pid
    assert d.close() == 0  # EOF: exit 0


def map_matches_every_vector():
    vectors = json.load(open(os.path.join(VECTORS, "names.json"), encoding="utf-8"))
    d = Driver()
    for c in vectors["cases"]:
        for ns in vectors["namespaces"]:
            args = {"name_hex": c["name_utf8_hex"], "dev": ns["dev"], "ino": ns["ino"]}
            for use_text in (False, True):
                if use_text:
                    if c["name"] is None:
                        continue
                    args = {"name": c["name"], "dev": ns["dev"], "ino": ns["ino"]}
                r = d("map", **args)
                if not c["valid"]:
                    err(r, "INVALID_NAME")
                    continue
                assert r["ok"], r
                assert r["lock_file"] == c["lock_file"] and r["capacity_file"] == c["capacity_file"]
                assert r["slot_files"] == c["slot_files"], r
                assert r["semaphores"] == c["semaphores"][ns["id"]], (c["description"], r)
                assert set(r["semaphores"]) == {"p"}, r  # no doorbells [XL-SEM-2]
                assert r["bell_words"] == c["bell_words"], (c["description"], r)  # [XL-SEM-7]
    assert d.close() == 0


def escapes_and_surrogates():
    d = Driver()
    r = d.raw('{"id":1,"op":"map","name":"\\ud83d\\udd12","dev":1,"ino":2}')  # a pair: U+1F512
    assert r["ok"] and r["lock_file"] == "%f0%9f%94%92.lock", r
    err(d.raw('{"id":2,"op":"map","name":"a\\ud800","dev":1,"ino":2}'), "INVALID_NAME")  # lone
    err(d.raw('{"id":3,"op":"map","name":"\\udc00\\ud800","dev":1,"ino":2}'), "INVALID_NAME")
    r = d.raw('{"id":4,"op":"map","name":"\\u00e9\\t","dev":1,"ino":2}')
    err(r, "INVALID_NAME")
    assert "XL-NAME-2" in r["message"]
    r = d.raw('{"id":5,"op":"map","name":"\\"\\\\\\/x","dev":1,"ino":2}')
    assert r["ok"] and r["lock_file"] == "%22%5c%2fx.lock", r
    assert d.close() == 0


def bad_requests():
    d = Driver()
    r = d.raw("not json")
    assert r["id"] is None and r["error"] == "BAD_REQUEST", r
    r = d.raw('{"id": 9, "op": "map", "name": "x", "dev": 1')
    assert r["id"] is None and r["error"] == "BAD_REQUEST", r
    err(d("no-such-op"), "BAD_REQUEST")
    err(d("acquire", handle="h404"), "BAD_REQUEST")
    err(d("map", name="x", dev=-1, ino=2), "BAD_REQUEST")
    err(d("map", name="x", dev="1", ino=2), "BAD_REQUEST")
    err(d("map", name_hex="zz", dev=1, ino=2), "BAD_REQUEST")
    err(d("open", kind="semaphore", name="x"), "BAD_REQUEST")  # no capacity
    err(d("open", kind="thing", name="x"), "BAD_REQUEST")
    err(d("open", kind="lock", name="x", shared="yes"), "BAD_REQUEST")
    # PROTOCOL.md: exact types, one protocol version, one way to give a name.
    err(d("hello", protocol=2), "BAD_REQUEST")
    err(d("hello"), "BAD_REQUEST")
    err(d("map", name="x", name_hex="78", dev=1, ino=2), "BAD_REQUEST")
    err(d("map", name_hex="7", dev=1, ino=2), "BAD_REQUEST")
    for bad in (1.5, 1e3, True, "10"):
        err(d("open", kind="semaphore", name="x", capacity=bad), "BAD_REQUEST")
        err(d("open", kind="posix_semaphore", name="x", value=bad), "BAD_REQUEST")
    err(d.raw('{"id": "7", "op": "hello", "protocol": 1}'), "BAD_REQUEST")
    r = d("hello", protocol=1)  # still serving
    assert r["ok"], r
    assert d.close() == 0


def m_word(name, kind):
    m = Driver()
    w = m("map", name=name, dev=1, ino=2)["bell_words"][kind]
    m.close()
    return w


def lock_semaphore_and_counter_ops():
    tmp = tempfile.mkdtemp(prefix="xlock-driver-test-")
    try:
        ns = os.path.join(tmp, "ns")
        d, e = Driver(), Driver()
        err(d("open", kind="lock", name="x", namespace="relative"), "INVALID_ARGUMENT")
        err(d("open", kind="lock", name="x", namespace=ns + "\u0000"), "INVALID_ARGUMENT")
        a = d("open", kind="lock", name="Job", namespace=ns)
        assert a["ok"] and a["path"] == ns + "/!job.lock" and a["namespace"] == ns, a
        st = os.stat(ns)
        assert (a["dev"], a["ino"]) == (st.st_dev, st.st_ino)
        b = e("open", kind="lock", name="Job", namespace=ns, reentrant=True)
        assert d("acquire", handle=a["handle"], timeout_ms=0)["ok"]
        assert d("locked", handle=a["handle"])["locked"] is True
        err(e("try_acquire", handle=b["handle"]), "WOULD_BLOCK")
        err(e("acquire", handle=b["handle"], timeout_ms=30), "TIMEOUT")
        err(d("acquire", handle=a["handle"]), "ALREADY_HELD")
        r = d("release", handle=a["handle"])
        assert r["ok"] and isinstance(r["mono_ns"], int), r
        err(d("release", handle=a["handle"]), "NOT_HELD")
        for bad in (1.5, True, "10"):
            err(e("acquire", handle=b["handle"], timeout_ms=bad), "BAD_REQUEST")
        counter = os.path.join(tmp, "counter")
        assert e("cycle", handle=b["handle"], count=50, path=counter, timeout_ms=None)["count"] == 50
        assert e("increment", path=counter)["value"] == 51
        assert open(counter).read() == "51\n"
        with open(counter, "w") as f:
            f.write("7")  # no newline is fine
        assert e("increment", path=counter)["value"] == 8
        with open(counter, "w") as f:
            f.write("seven\n")
        err(e("increment", path=counter), "BAD_REQUEST")
        # A huge timeout is untimed, a huge capacity or value INVALID_ARGUMENT naming it as given.
        assert e("acquire", handle=b["handle"], timeout_ms=10**30)["ok"]
        assert e("release", handle=b["handle"])["ok"]
        r = e("open", kind="semaphore", name="big", capacity=10**30, namespace=ns)
        err(r, "INVALID_ARGUMENT")
        assert str(10**30) in r["message"], r
        r = e("open", kind="posix_semaphore", name="big", value=2**31, namespace=ns)
        err(r, "INVALID_ARGUMENT")
        assert str(2**31) in r["message"], r
        err(e("open", kind="posix_semaphore", name="", value=10**30, namespace=ns), "INVALID_NAME")
        assert a["semaphore"] is None and a["bell"] == ns + "/.xlock-bell", a
        assert a["bell_word"] == m_word("Job", "l") and a["sharing"] == "private", a
        s = d("open", kind="semaphore", name="pool", capacity=2, namespace=ns)
        assert s["path"] == ns + "/pool.sem", s
        assert s["bell_word"] == m_word("pool", "s") and s["semaphore"] is None, s
        assert d("acquire", handle=s["handle"])["slot"] == 0
        assert d("try_acquire", handle=s["handle"])["slot"] == 1
        err(e("open", kind="semaphore", name="pool", capacity=3, namespace=ns), "CAPACITY_MISMATCH")
        assert d("close", handle=s["handle"])["ok"]
        err(d("locked", handle=s["handle"]), "BAD_REQUEST")  # forgotten
        p = d("open", kind="posix_semaphore", name="raw", value=1, namespace=ns)
        assert p["path"] is None and p["semaphore"].startswith("/xl1p"), p
        assert p["bell"] is None and p["bell_word"] is None and p["sharing"] == "private", p
        r = d("acquire", handle=p["handle"], timeout_ms=100)
        assert r["ok"] and r["slot"] is None, r
        err(d("try_acquire", handle=p["handle"]), "WOULD_BLOCK")
        assert d("close", handle=p["handle"])["ok"]  # closing posts the permit back
        assert d("remove", kind="posix_semaphore", name="raw", namespace=ns)["removed"] is True
        assert d("remove", kind="lock", name="Job", namespace=ns)["removed"] is True
        assert d("remove", kind="lock", name="Job", namespace=ns)["removed"] is False
        assert d("remove", kind="semaphore", name="pool", capacity=2, namespace=ns)["removed"] is True
        s = d("open", kind="semaphore", name="pool2", capacity=2, namespace=ns)
        assert d("close", handle=s["handle"])["ok"]
        assert d("remove", kind="semaphore", name="pool2", namespace=ns)["removed"] is True  # file decides
        assert sorted(os.listdir(ns)) == [".xlock-bell"], os.listdir(ns)
        r = d("exit")
        assert r["ok"], r
        assert d.p.wait(timeout=10) == 0
        assert e.close() == 0
    finally:
        shutil.rmtree(tmp)


def fork_check():
    """The forked child holds nothing [XL-HOLD-7], leaves stdin/stdout alone, and keeps nothing alive
    once the driver is killed [XL-HOLD-8]; for a lock and a semaphore permit."""
    tmp = tempfile.mkdtemp(prefix="xlock-drv-fork-")
    ns = os.path.join(tmp, "ns")
    children = []
    try:
        for kind, extra in (("lock", {}), ("semaphore", {"capacity": 1})):
            d = Driver()
            h = d("open", kind=kind, name="forked", namespace=ns, **extra)["handle"]
            assert d("acquire", handle=h)["ok"]
            r = d("fork_check", handle=h)
            assert r["ok"], r
            children.append(r["child_pid"])
            assert (r["release"], r["locked"], r["try_acquire"]) == ("NOT_HELD", False, "WOULD_BLOCK"), r
            assert d("locked", handle=h)["locked"] is True  # the driver serves on
            d.p.kill()
            d.p.wait(timeout=10)
            assert d.p.stdout.read() == b""  # EOF: the lingering child does not hold stdout
            with open("/proc/%d/stat" % r["child_pid"]) as f:
                assert f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"), "the child must still live"
            e = Driver()
            h2 = e("open", kind=kind, name="forked", namespace=ns, **extra)["handle"]
            got = e("acquire", handle=h2, timeout_ms=10000)
            assert got["ok"], got
            assert e.close() == 0
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmp)


for fn in (hello_and_eof, map_matches_every_vector, escapes_and_surrogates, bad_requests,
           lock_semaphore_and_counter_ops, fork_check):
    case(fn)
print("driver_test: %d passed, %d failed" % (results["passed"], results["failed"]))
sys.exit(1 if results["failed"] else 0)
