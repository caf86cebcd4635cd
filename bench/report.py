"""Turn the results of bench/run.py into the Markdown tables of latest.md, with every target judged."""

from collections.abc import Sequence
from typing import Any, Optional

LANG_TITLE = {"python": "Python", "python-abi": "Python (ABI fallback)", "c": "C", "ruby": "Ruby"}
PEERS = ("filelock", "portalocker", "fasteners")
PEER_LABEL = {
    "filelock": "filelock.FileLock",
    "portalocker": "portalocker.Lock",
    "fasteners": "fasteners.InterProcessLock",
}
LOCK_LABEL = {
    "python": {
        "raw": "fcntl.flock pair (baseline)",
        "spec-floor": "fcntl.flock pair + os.fstat st_nlink > 0, XL-LOCK-8's check (the spec's floor)",
        "path-recheck": "fcntl.flock pair + os.stat(dir_fd) path re-check (the stricter check)",
        "xlock": "xlock.Lock",
        "xlock-timed": "xlock.Lock.acquire(timeout=10)",
    },
    "c": {
        "raw": "flock(2) pair (baseline)",
        "spec-floor": "flock pair + fstat(fd) st_nlink > 0, XL-LOCK-8's check (the spec's floor)",
        "path-recheck": "flock pair + fstatat path re-check (the stricter check XL-LOCK-8 allows)",
        "xlock": "libxlock xlock_acquire(l, -1)",
        "xlock-timed": "libxlock xlock_acquire(l, 10000)",
    },
    "python-abi": {
        "raw": "fcntl.flock pair (baseline)",
        "xlock": "xlock.Lock",
        "xlock-timed": "xlock.Lock.acquire(timeout=10)",
    },
    "ruby": {
        "raw": "File#flock pair (baseline)",
        "xlock": "XLock::Lock#lock/#unlock",
        "xlock-timed": "XLock::Lock#lock(timeout: 10)/#unlock",
    },
}
SEM_LABEL = {
    "python": {
        "posix_ipc": "posix_ipc.Semaphore (baseline)",
        "xlock-semaphore": "xlock.Semaphore (crash-safe)",
        "xlock-posix-semaphore": "xlock.PosixSemaphore",
        "xlock-semaphore-cap1": "xlock.Semaphore, capacity 1",
        "xlock-semaphore-256-255-held": "xlock.Semaphore, capacity 256, 255 held elsewhere",
    },
    "c": {
        "posix-sem": "sem_wait/sem_post (baseline)",
        "xlock-semaphore": "xlock_sem (crash-safe)",
        "xlock-posix-semaphore": "xlock_psem",
        "xlock-semaphore-cap1": "xlock_sem, capacity 1",
        "xlock-semaphore-256-255-held": "xlock_sem, capacity 256, 255 held elsewhere",
    },
    "ruby": {
        "xlock-semaphore": "XLock::Semaphore (crash-safe)",
        "xlock-posix-semaphore": "XLock::PosixSemaphore",
        "xlock-semaphore-cap1": "XLock::Semaphore, capacity 1",
        "xlock-semaphore-256-255-held": "XLock::Semaphore, capacity 256, 255 held elsewhere",
    },
}


def us(v: float) -> str:
    if v >= 10000:
        return "%.1f ms" % (v / 1000.0)
    return f"{v:.1f} us"


def ns(v: float) -> str:
    return f"{v:.0f} ns" if v < 10000 else "%.1f us" % (v / 1000.0)


def ratio(x: float) -> str:
    return f"{x:.2f}x"


class Targets:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, bool]] = []

    def judge(self, what: str, figure: str, met: bool) -> str:
        self.rows.append((what, figure, met))
        return "met" if met else "**missed**"


def table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def uncontended_section(res: dict[str, Any], t: Targets) -> str:
    rows = []
    for lang in ("c", "python", "python-abi", "ruby"):
        got = res["uncontended"].get(lang, {})
        if "skipped" in got:  # the ABI-fallback run did not run in ABI mode
            rows.append((LANG_TITLE[lang], "all", "skipped: " + got["skipped"], "", "", ""))
            continue
        raw = got.get("raw", {}).get("ns_per_pair")
        floor = got.get("spec-floor", {}).get("ns_per_pair")
        for key, label in LOCK_LABEL[lang].items():
            v = got.get(key)
            if v is None:
                continue
            if "skipped" in v:
                rows.append((LANG_TITLE[lang], label, "skipped: " + v["skipped"], "", "", ""))
                continue
            r = v["ns_per_pair"] / raw
            if key in ("raw", "spec-floor", "path-recheck", "xlock-timed"):
                verdict = ""
            elif lang == "python-abi":
                what = "uncontended Python xlock.Lock, ABI fallback <= 3x raw pair"
                verdict = t.judge(what, ratio(r), r <= 3.0)
            else:
                what = f"uncontended {LANG_TITLE[lang]} {label} <= 2x raw pair"
                verdict = t.judge(what, ratio(r), r <= 2.0)
            of_floor = ratio(v["ns_per_pair"] / floor) if floor and key.startswith("xlock") else ""
            rows.append((LANG_TITLE[lang], label, ns(v["ns_per_pair"]), ratio(r), of_floor, verdict))
        if lang == "python":
            x = got.get("xlock", {}).get("ns_per_pair")
            for peer in PEERS:
                v = got.get(peer)
                if not v or "skipped" in v:
                    continue
                verdict = ""
                if x:
                    ahead = v["ns_per_pair"] / x
                    verdict = (
                        t.judge(
                            f"uncontended xlock.Lock >= 10x ahead of {peer}",
                            f"{ahead:.1f}x ahead",
                            ahead >= 10.0,
                        )
                        + f" (xlock {ahead:.1f}x ahead)"
                    )
                rows.append(
                    (
                        "Python",
                        PEER_LABEL[peer],
                        ns(v["ns_per_pair"]),
                        ratio(v["ns_per_pair"] / raw),
                        "",
                        verdict,
                    )
                )
    return (
        "## 1. Uncontended acquire+release (median of 7 runs of ~40 ms each)\n\n"
        "The Python (ABI fallback) rows are a second run of the Python program with `XLOCK_FFI=abi` "
        "(cffi's ABI mode, what a machine without a C compiler gets; the child's `xlock.build_info()` "
        "confirms it), each ratio against that run's own raw pair.\n\n"
    ) + table(
        (
            "language",
            "implementation",
            "per pair",
            "x raw pair",
            "x spec floor",
            "target: <= 2x raw (ABI fallback <= 3x); >= 10x ahead of peers",
        ),
        rows,
    )


def scale_section(res: dict[str, Any], t: Targets) -> str:
    """Issue 14's targets: timed vs untimed, object per use vs the raw cycle, semaphores flat in N, and
    10,000 objects under ulimit -n 10100, for every language."""
    rows = []
    checks = (
        ("xlock-timed", "xlock", 1.2, "timed uncontended acquire+release (10 s timeout) <= 1.2x untimed"),
        (
            "xlock-per-use",
            "raw-cycle",
            3.0,
            "lock object per use (open, acquire, release, close) <= 3x raw open+flock+flock(LOCK_UN)+close",
        ),
        (
            "xlock-semaphore-256-255-held",
            "xlock-semaphore-cap1",
            2.0,
            "counting semaphore, capacity 256 with 255 held, acquire+release <= 2x capacity 1",
        ),
    )
    for lang in ("c", "python", "ruby"):
        got = res["uncontended"].get(lang, {})
        for key, base_key, limit, what in checks:
            v, b = got.get(key), got.get(base_key)
            if not v or not b or "ns_per_pair" not in v or "ns_per_pair" not in b:
                continue
            r = v["ns_per_pair"] / b["ns_per_pair"]
            rows.append(
                (
                    LANG_TITLE[lang],
                    what,
                    "{} vs {}".format(ns(v["ns_per_pair"]), ns(b["ns_per_pair"])),
                    ratio(r),
                    t.judge(f"{LANG_TITLE[lang]}: {what}", ratio(r), r <= limit),
                )
            )
        o = res.get("objects", {}).get(lang)
        if o:
            ok = o.get("objects") == o.get("wanted")
            opened = "{} of {}".format(o.get("objects", 0), o.get("wanted", 0))
            figure = opened + (
                " opened, {} per open".format(ns(o["ns_per_open"]))
                if ok
                else " opened: " + o.get("error", "")
            )
            rows.append(
                (
                    LANG_TITLE[lang],
                    "10,000 lock objects open at once under ulimit -n 10100",
                    figure,
                    "",
                    t.judge(
                        f"{LANG_TITLE[lang]}: 10,000 lock objects under ulimit -n 10100",
                        opened,
                        ok,
                    ),
                )
            )
    return (
        "## 1a. Speed at scale (issue 14): timed, per use, semaphores flat in N, 10,000 objects\n\n"
        "Medians of the interleaved runs of section 1 (the same program and run per language).\n\n"
        + table(("language", "pattern", "figures", "ratio", "target"), rows)
    )


def ms(v: float) -> str:
    return f"{v:.1f} ms"


def startup_section(res: dict[str, Any], t: Targets) -> str:
    """Issue 14's start-up targets: wall time of fresh processes, interpreter start included, each
    against `python -c pass` measured interleaved with it."""
    st = res.get("startup")
    if not st:
        return ""
    cmds = st["commands"]
    base = cmds["baseline"].get("median_ms")
    ffi = st["build_info"].get("ffi")
    imported = st.get("importtime_median_us")
    rows = []
    cases = (
        ("baseline", "`python -c pass` (baseline)", None, ""),
        (
            "import",
            f"`python -c 'import xlock'` (FFI: {ffi or st['build_info'].get('error', '?')})",
            25.0,
            "import xlock <= 25 ms (compiled): wall time of a fresh `python -c 'import xlock'`, "
            "interpreter start included",
        ),
        (
            "cli",
            "`xlock path NAME`, " + st["cli"],
            60.0,
            "xlock path NAME <= 60 ms: wall time of a fresh `xlock path NAME` ({}), "
            "interpreter start included".format(
                "installed script" if st["cli"].startswith("the installed") else "python -m xlock"
            ),
        ),
    )
    for key, label, limit, what in cases:
        v = cmds[key]
        if "skipped" in v:
            rows.append((label, "skipped: " + v["skipped"], "", "", "", ""))
            continue
        m = v["median_ms"]
        over = ms(m - base) if base is not None and key != "baseline" else ""
        only = ms(imported / 1000.0) if key == "import" and imported is not None else ""
        verdict = ""
        if limit is not None:
            figure = "{} (python -c pass {}{})".format(
                ms(m), ms(base) if base is not None else "?", f"; import alone {only}" if only else ""
            )
            if key == "import" and ffi != "compiled":
                verdict = "not judged: the compiled FFI is not in use ({})".format(
                    st["build_info"].get("reason") or st["build_info"].get("error", "?")
                )
            else:
                verdict = t.judge(what, figure, m <= limit)
        rows.append((label, ms(m), ms(v["min_ms"]), over, only, verdict))
    return (
        "## 1b. Start-up: fresh processes (issue 14), wall time including interpreter start\n\n"
        "Median (and minimum) of {} rounds; each round spawns every command once, interleaved, from "
        "this Python (`{}`), and waits for it to exit; one unmeasured warm-up round first. `XLOCK_FFI` "
        "is removed from the environment, so `import xlock` takes the compiled path when it is built. "
        "\"import only\" is the cumulative time of `xlock` in `python -X importtime -c 'import xlock'` "
        "(median of the same rounds).\n\n".format(st["runs"], st["python"])
        + table(
            (
                "command",
                "median wall",
                "min",
                "minus `python -c pass`",
                "import only",
                "target: import <= 25 ms, xlock path <= 60 ms",
            ),
            rows,
        )
    )


def raw_handoff(res: dict[str, Any]) -> Optional[float]:
    for row in res["handoff"]:
        if row["pair"].startswith("raw flock(2), C"):
            median: float = row["median_us"]  # a summarize() figure
            return median
    return None


def directions(row: dict[str, Any]) -> str:
    """'x / y': the median hand-off from the pair's first to its second process, and back."""
    if row.get("median_a_to_b_us") is None or row.get("median_b_to_a_us") is None:
        return ""
    return "{} / {}".format(us(row["median_a_to_b_us"]), us(row["median_b_to_a_us"]))


def handoff_figures(row: dict[str, Any]) -> tuple[str, str, str, str]:
    """A hand-off row's median, a -> b / b -> a, mean and max, as its table shows them."""
    return us(row["median_us"]), directions(row), us(row["mean_us"]), us(row["max_us"])


def handoff_section(res: dict[str, Any], t: Targets) -> str:
    base = raw_handoff(res)
    rows = []
    for row in res["handoff"]:
        r = row["median_us"] / base
        verdict = ""
        if row["kind"] == "xlock" and row["mode"] == "blocking":
            what = "blocking hand-off {} <= 1.5x raw flock".format(row["pair"])
            verdict = t.judge(what, ratio(r), r <= 1.5)
        rows.append(
            (
                row["pair"],
                row["mode"],
                row["n"],
                *handoff_figures(row),
                ratio(r),
                verdict,
            )
        )
    return (
        "## 2. Hand-off between two processes: release -> the other side holds it\n\n"
        "Timed rows wait with a 10 s timeout; the waiter is asleep in the kernel before the release. "
        '"a -> b / b -> a" splits the median by direction (the pair\'s first process releasing, then the '
        "second). The spec-floor rows add the check of XL-LOCK-8 (fstat, st_nlink > 0) to the raw waiter.\n\n"
        + table(
            (
                "pair",
                "mode",
                "rounds",
                "median",
                "a -> b / b -> a",
                "mean",
                "max",
                "median x raw flock(2)",
                "target: blocking <= 1.5x raw",
            ),
            rows,
        )
    )


def wakeup_section(res: dict[str, Any], t: Targets) -> str:
    handoff_base = raw_handoff(res)
    same = [row["median_us"] for row in res["wakeup"] if row["kind"] == "baseline"]
    base = same[0] if same else handoff_base
    rows = []
    for row in res["wakeup"]:
        r = row["median_us"] / base
        verdict = ""
        if row["kind"] == "xlock":
            what = "timed wake-up {} <= 3x raw blocking hand-off (same pause)".format(row["pair"])
            verdict = t.judge(what, ratio(r), r <= 3.0)
        rows.append(
            (
                row["pair"],
                row["n"],
                *handoff_figures(row),
                ratio(r),
                ratio(row["median_us"] / handoff_base),
                verdict,
            )
        )
    return (
        "## 3. Timed-wait wake-up: release after a random 5-45 ms -> a waiter with a 10 s timeout "
        "holds it\n\n"
        "The baseline is a raw blocking `flock(2)` waiter released after the same random pause: after "
        "milliseconds of sleep the waiter's CPU is in a deeper idle state than in the back-to-back "
        "hand-offs of section 2, and both waiters pay that; the floor rows show what the raw waiter "
        "pays for the XL-LOCK-8 check and for being Python, cold.\n\n"
        + table(
            (
                "pair",
                "rounds",
                "median",
                "a -> b / b -> a",
                "mean",
                "max",
                "median x raw blocking (same pause)",
                "median x raw hand-off (section 2)",
                "target: <= 3x",
            ),
            rows,
        )
    )


def contention_section(res: dict[str, Any], t: Targets) -> str:
    raw = {
        (row["impl"].split("-")[0], row["nproc"]): row["ops_per_s"]
        for row in res["contention"]
        if row["impl"].endswith("-raw")
    }
    rows = []
    for row in res["contention"]:
        lang = row["impl"].split("-")[0]
        r = row["ops_per_s"] / raw[(lang, row["nproc"])]
        verdict = ""
        if ("-xlock" in row["impl"]) and row["nproc"] == 8:
            verdict = t.judge("contention N=8 {} >= 0.5x raw flock".format(row["impl"]), ratio(r), r >= 0.5)
        exact = all(c == row["expected"] for c in row["final"])
        counts = (
            "{} of {} runs = {}".format(len(row["final"]), len(row["final"]), row["expected"])
            if exact
            else "**{}, expected {}**".format(", ".join(str(c) for c in row["final"]), row["expected"])
        )
        rows.append(
            (
                row["impl"],
                row["nproc"],
                "{:.0f}".format(row["ops_per_s"]),
                ratio(r),
                "{:.2f} ms".format(row["max_wait_ms"]),
                counts,
                verdict,
            )
        )
    return (
        "## 4. Contention: N processes acquire / increment a counter file / release\n\n"
        "Throughput is the median of the repeats; worst wait is the longest single acquire of any "
        "process in any repeat; every final count is asserted equal to the expected total.\n\n"
        + table(
            (
                "implementation",
                "processes",
                "ops/s",
                "x raw (same language)",
                "worst wait",
                "final counts",
                "target: N=8 >= 0.5x raw",
            ),
            rows,
        )
    )


def semaphore_section(res: dict[str, Any], t: Targets) -> str:
    rows: list[tuple[Any, ...]] = []
    for lang in ("c", "python", "ruby"):
        got = res["uncontended"].get(lang, {})
        # Ruby has no posix_ipc of its own: its rows compare with the C sem_wait/sem_post pair.
        base_key = {"python": "posix_ipc", "c": "posix-sem", "ruby": None}[lang]
        base = (
            (got if base_key else res["uncontended"].get("c", {}))
            .get(base_key or "posix-sem", {})
            .get("ns_per_pair")
        )
        for key, label in SEM_LABEL[lang].items():
            v = got.get(key)
            if not v:
                continue
            if "skipped" in v:
                rows.append((LANG_TITLE[lang], label, "skipped: " + v["skipped"], ""))
                continue
            rows.append((LANG_TITLE[lang], label, ns(v["ns_per_pair"]), ratio(v["ns_per_pair"] / base)))
    base = {row["mode"]: row["median_us"] for row in res["semaphore_handoff"] if row["kind"] == "baseline"}
    # The target as the brief words it: a crash-safe acquire+release against posix_ipc's hand-off.
    for i, (lang_title, label, _per_pair, _) in enumerate(rows):
        v = res["uncontended"].get(lang_title.lower(), {}).get("xlock-semaphore")
        if "crash-safe" in label and v and "ns_per_pair" in v and "blocking" in base:
            r = v["ns_per_pair"] / 1000.0 / base["blocking"]
            rows[i] = rows[i] + (
                t.judge(
                    f"crash-safe semaphore acquire+release, {lang_title}, <= 2x posix_ipc hand-off",
                    ratio(r),
                    r <= 2.0,
                )
                + f" ({ratio(r)} of the hand-off)",
            )
    rows = [r if len(r) == 5 else (*r, "") for r in rows]
    out = "## 5. Semaphores\n\n### Uncontended acquire+release (median of 7 runs)\n\n" + table(
        (
            "language",
            "implementation",
            "per pair",
            "x POSIX baseline (Ruby: the C pair)",
            "target: <= 2x posix_ipc's blocking hand-off",
        ),
        rows,
    )
    rows = []
    for row in res["semaphore_handoff"]:
        r = row["median_us"] / base[row["mode"]]
        verdict = ""
        if row["kind"] == "semaphore":
            verdict = t.judge(
                "crash-safe semaphore hand-off {} {} <= 2x posix_ipc".format(row["pair"], row["mode"]),
                ratio(r),
                r <= 2.0,
            )
        label = {
            "baseline": "posix_ipc.Semaphore",
            "semaphore": "crash-safe",
            "posix_semaphore": "POSIX (xlock)",
        }[row["kind"]]
        rows.append(
            (
                label,
                row["pair"],
                row["mode"],
                row["n"],
                us(row["median_us"]),
                us(row["mean_us"]),
                ratio(r),
                verdict,
            )
        )
    out += "\n### Two-process hand-off (capacity 1 / initial value 1)\n\n" + table(
        (
            "semaphore",
            "pair",
            "mode",
            "rounds",
            "median",
            "mean",
            "x posix_ipc (same mode)",
            "target: crash-safe <= 2x",
        ),
        rows,
    )
    return out


def markdown(res: dict[str, Any]) -> str:
    t = Targets()
    m = res["machine"]
    body = [
        uncontended_section(res, t),
        scale_section(res, t),
        startup_section(res, t),
        handoff_section(res, t),
        wakeup_section(res, t),
        contention_section(res, t),
        semaphore_section(res, t),
    ]
    head = (
        "# xlock benchmarks\n\n{} on {} cores, {}, Linux {}, Python {}; commit {}; `{}` ({} s; load "
        "average {:.2f} before, {:.2f} after){}.\n\n".format(
            res["date"],
            m["nproc"],
            m["cpu"],
            m["kernel"],
            m["python"],
            res.get("commit", "?"),
            res["command"],
            res.get("seconds", "?"),
            res.get("load_before", -1),
            res.get("load_after", -1),
            " — QUICK SMOKE RUN, figures not meaningful" if res["quick"] else "",
        )
    )
    if res["skipped"]:
        skipped = "; ".join("{} ({})".format(*kv) for kv in sorted(res["skipped"].items()))
        head += "Skipped: " + skipped + ".\n\n"
    met = sum(1 for r in t.rows if r[2])
    summary = f"## Targets: {met} of {len(t.rows)} met\n\n" + table(
        ("target", "figure", "verdict"), [(w, f, "met" if ok else "**missed**") for w, f, ok in t.rows]
    )
    return head + summary + "\n" + "\n".join(b for b in body if b)
