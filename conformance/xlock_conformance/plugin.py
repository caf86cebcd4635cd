"""The pytest plugin: drivers as parameters, case selection, progress lines and the result matrix.

Cases are test functions `test_<case>` in `xlock_conformance/cases/`, marked with `@spec(...)`, taking one
of the fixtures `one` (a driver), `pair` (two drivers, possibly the same binding twice) or `group` (every
available driver), plus `lab` (a fresh namespace and cleanup).
"""

from __future__ import annotations

import fnmatch
import itertools
import signal
import time
from collections import Counter, OrderedDict
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Optional, cast

import pytest

from xlock_conformance import bundled, driver
from xlock_conformance.driver import DriverSpec
from xlock_conformance.lab import Lab
from xlock_conformance.spec import find_repo, must_ids, name_vectors

PAIR = "\u2194"  # ↔
# Matrix order: from names up to whole-system behaviour.
MODULE_ORDER = [
    "test_names",
    "test_namespace",
    "test_lockfile",
    "test_errors",
    "test_lock",
    "test_wakeup",
    "test_bell",
    "test_planted",
    "test_shared",
    "test_death",
    "test_fork",
    "test_semaphore",
    "test_remove",
    "test_decided",
    "test_stress",
    "test_interop",
    "test_protocol",
]
GROUP = "all"
CASES_DIR = Path(__file__).resolve().parent / "cases"


def spec(*ids: str) -> Any:
    """Mark a case with the spec requirement IDs it checks."""
    return pytest.mark.spec(*ids)


def needs(*capabilities: str) -> Any:
    """Mark a case that runs only for drivers claiming these capabilities (e.g. `pg`): the others get no
    column for it, not a skip, and the matrix says once which drivers did not claim it."""
    return pytest.mark.needs(*capabilities)


# -- options and configuration -----------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xlock-conformance")
    group.addoption(
        "--driver",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="run this driver (repeatable); a bare NAME (py, py-abi, c, rb) is a bundled driver; "
        "without --driver the bundled py, py-abi, c and rb drivers run",
    )
    group.addoption(
        "--run",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run only cases whose name, name[column] or spec ID matches (glob; repeatable)",
    )
    group.addoption(
        "--skip",
        action="append",
        default=[],
        metavar="PATTERN",
        help="leave out cases whose name, name[column] or spec ID matches (glob; repeatable)",
    )
    group.addoption("--list", action="store_true", default=False, help="list the cases with their spec IDs")
    group.addoption("--repo", default=None, help="the xlock checkout (default: found from cwd)")
    group.addoption(
        "--slow",
        type=float,
        default=1.0,
        metavar="N",
        help="multiply every reply deadline by N (drivers under valgrind or sanitizers)",
    )


class State:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.repo = find_repo(config.getoption("--repo"))
        self.listing = config.getoption("--list")
        options = config.getoption("--driver")
        if options:
            self.drivers = [
                bundled.by_name(v, self.repo) if "=" not in v else bundled.parse_driver_option(v)
                for v in options
            ]
            names = [d.name for d in self.drivers]
            if len(set(names)) != len(names):
                raise pytest.UsageError(f"--driver names must be distinct: {names}")
        elif self.listing:
            self.drivers = [DriverSpec(n, []) for n in ("py", "py-abi", "c", "rb")]
        else:
            self.drivers = bundled.bundled(self.repo)
        self.results: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.failures: list[tuple[str, str, str]] = []
        self.skips: Counter[str] = Counter()
        self.case_ids: OrderedDict[str, list[str]] = OrderedDict()
        self.case_module: dict[str, str] = {}
        self.case_shape: dict[str, str] = {}  # driver, pair or all: which columns a case takes
        self.claims: dict[str, set[str]] = {}  # driver name -> capabilities from its hello
        self.unclaimed: OrderedDict[str, list[str]] = OrderedDict()  # capability -> drivers without it
        self.total = 0
        self.done = 0
        self.started = time.monotonic()

    def claiming(self, capabilities: list[str]) -> list[DriverSpec]:
        """The available drivers whose hello claims every capability (each driver is asked once)."""
        found = []
        for d in self.drivers:
            if d.name not in self.claims:
                self.claims[d.name] = _hello_capabilities(d)
            if all(c in self.claims[d.name] for c in capabilities):
                found.append(d)
            else:
                for c in capabilities:
                    if c not in self.claims[d.name] and d.name not in self.unclaimed.setdefault(c, []):
                        self.unclaimed[c].append(d.name)
        return found

    def columns(self) -> list[str]:
        singles = [d.name for d in self.drivers]
        pairs = [pair_label(a, b) for a, b in pairs_of(self.drivers)]
        return singles + pairs + [GROUP]


def _hello_capabilities(spec: DriverSpec) -> set[str]:
    """The driver's claimed capabilities; a driver that cannot start or answer claims nothing (its own
    cases report that), and the probe leaves no mark on the driver's spec."""
    if spec.unavailable or not spec.argv:
        return set()
    hung = spec.hung_at_start
    probe = None
    try:
        probe = driver.Driver(spec, spec.name)
        probe.handshake()
        return set(probe.capabilities)
    except driver.DriverError:
        return set()
    finally:
        spec.hung_at_start = hung
        if probe is not None:
            probe.kill()


def pairs_of(drivers: list[DriverSpec]) -> Iterator[tuple[DriverSpec, DriverSpec]]:
    """Each driver with itself, then every two different drivers."""
    for d in drivers:
        yield d, d
    yield from itertools.combinations(drivers, 2)


def pair_label(a: DriverSpec, b: DriverSpec) -> str:
    return f"{a.name}{PAIR}{b.name}"


def _nothing(signum: int, frame: object) -> None:
    pass


def _default_in_drivers() -> None:
    """Drivers start with SIGINT, SIGQUIT and SIGHUP at their defaults, as from an interactive shell,
    whatever the runner's were: a background job of a script starts with SIGINT and SIGQUIT ignored, nohup
    ignores SIGHUP, and an ignored disposition is inherited across exec (a runtime then keeps it ignored,
    and pg_interrupt's Ctrl-C would not reach the driver). A handler is reset at exec; this one does
    nothing, so the runner itself still ignores them."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_IGN:
            signal.signal(sig, _nothing)


def pytest_configure(config: pytest.Config) -> None:
    _default_in_drivers()
    config.addinivalue_line("markers", "spec(*ids): the xlock/1 requirement IDs a case checks")
    config.addinivalue_line("markers", "needs(*capabilities): run only for drivers claiming them")
    driver.SLOW["factor"] = max(config.getoption("--slow"), 1.0)
    try:
        config._xlc = State(config)  # type: ignore[attr-defined]
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def _state(config: pytest.Config) -> State:
    return config._xlc  # type: ignore[attr-defined,no-any-return]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    st = _state(metafunc.config)
    needed = [c for m in metafunc.definition.iter_markers("needs") for c in m.args]
    if needed and not st.listing and not _selected(metafunc):
        return  # left out by --run/--skip: no driver is asked; the item is dropped at collection
    drivers = st.claiming(needed) if needed and not st.listing else st.drivers
    if needed and not drivers:
        return  # no driver claims what the case needs: no column; the item is dropped at collection
    if "one" in metafunc.fixturenames:
        metafunc.parametrize("one", drivers, ids=[d.name for d in drivers])
    elif "pair" in metafunc.fixturenames:
        pairs = list(pairs_of(drivers))
        metafunc.parametrize("pair", pairs, ids=[f"{a.name}+{b.name}" for a, b in pairs])
    elif "group" in metafunc.fixturenames:
        metafunc.parametrize("group", [st.drivers], ids=[GROUP])


def _selected(metafunc: pytest.Metafunc) -> bool:
    """Whether --run/--skip keep a case, judged by its name and spec IDs alone (before it has columns)."""
    config = metafunc.config
    name = metafunc.function.__name__.removeprefix("test_")
    ids = [i for m in metafunc.definition.iter_markers("spec") for i in m.args]

    def hit(pattern: str) -> bool:
        return (
            fnmatch.fnmatchcase(name, pattern)
            or fnmatch.fnmatchcase(name, pattern.split("[", 1)[0])
            or any(fnmatch.fnmatchcase(i, pattern) for i in ids)
        )

    runs, skips = config.getoption("--run"), config.getoption("--skip")
    return (not runs or any(hit(p) for p in runs)) and not any(hit(p) for p in skips if "[" not in p)


def case_name(item: pytest.Item) -> str:
    return getattr(item, "originalname", item.name).removeprefix("test_")


def column(item: pytest.Item) -> str:
    params = getattr(item, "callspec", None)
    params = params.params if params else {}
    if "one" in params:
        return str(params["one"].name)
    if "pair" in params:
        return pair_label(*params["pair"])
    return GROUP


def spec_ids(item: pytest.Item) -> list[str]:
    return [i for m in item.iter_markers("spec") for i in m.args]


def _matches(item: pytest.Item, pattern: str) -> bool:
    name = case_name(item)
    full = f"{name}[{column(item)}]"
    return (
        fnmatch.fnmatchcase(name, pattern)
        or fnmatch.fnmatchcase(full, pattern)
        or any(fnmatch.fnmatchcase(i, pattern) for i in spec_ids(item))
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    st = _state(config)

    def order(item: pytest.Item) -> int:
        module = cast("pytest.Function", item).module.__name__.rsplit(".", 1)[-1]
        return MODULE_ORDER.index(module) if module in MODULE_ORDER else len(MODULE_ORDER)

    items.sort(key=order)  # stable: keeps definition order inside a module
    for item in items:
        st.case_ids.setdefault(case_name(item), spec_ids(item))
        fixtures = getattr(item, "fixturenames", ())
        st.case_shape.setdefault(
            case_name(item), "driver" if "one" in fixtures else "pair" if "pair" in fixtures else "all"
        )
        st.case_module.setdefault(
            case_name(item), cast("pytest.Function", item).module.__name__.rsplit(".", 1)[-1]
        )
    if st.listing:
        _print_listing(config, st)
        items[:] = []
        return
    runs, skips = config.getoption("--run"), config.getoption("--skip")
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        if item.get_closest_marker("needs") and column(item) == GROUP:  # no driver claims it: no column
            drop.append(item)
            continue
        wanted = (not runs or any(_matches(item, p) for p in runs)) and not any(
            _matches(item, p) for p in skips
        )
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
    st.total = len(keep)


def _print_listing(config: pytest.Config, st: State) -> None:
    tw = config.get_terminal_writer()
    current = None
    for name, ids in st.case_ids.items():
        if st.case_module[name] != current:
            current = st.case_module[name]
            tw.line(f"{current.removeprefix('test_')}:")
        tw.line(f"  {name:34} {st.case_shape[name]:7} {' '.join(ids) or '(protocol)'}")
    _print_uncovered(tw, st)


def pytest_runtest_setup(item: pytest.Item) -> None:
    params = getattr(item, "callspec", None)
    params = params.params if params else {}
    involved: list[DriverSpec] = []
    if "one" in params:
        involved = [params["one"]]
    elif "pair" in params:
        involved = list(params["pair"])
    for d in involved:
        if d.unavailable:
            pytest.skip(f"driver '{d.name}' unavailable: {d.unavailable}")
    if "group" in params and not any(not d.unavailable for d in params["group"]):
        pytest.skip("no driver is available")


@pytest.fixture
def lab() -> Iterator[Lab]:
    bench = Lab()
    try:
        yield bench
    finally:
        bench.close()


@pytest.fixture
def available(group: list[DriverSpec]) -> list[DriverSpec]:
    """The drivers of `group` that can run here."""
    return [d for d in group if not d.unavailable]


@pytest.fixture
def vectors(request: pytest.FixtureRequest) -> dict[str, Any]:
    """spec/vectors/names.json of the checkout."""
    repo = _state(request.config).repo
    if repo is None:
        pytest.fail("spec/vectors/names.json not found: run from an xlock checkout or give --repo DIR")
    return name_vectors(repo)


# -- reporting ------------------------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed or call.excinfo is None:
        return
    where = ""
    for entry in reversed(call.excinfo.traceback):
        path = Path(str(entry.path))
        if path.parent == CASES_DIR:
            where = f"{path.name}:{entry.lineno + 1}"
            break
    message = call.excinfo.exconly()
    bench = item.funcargs.get("lab") if hasattr(item, "funcargs") else None
    traces = bench.report() if isinstance(bench, Lab) else ""
    report.longrepr = f"{where}\n{message}\n\n{traces}".strip()


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> Optional[tuple[str, str, str]]:
    # Our own progress lines replace pytest's dots.
    if report.when == "call" or (report.when == "setup" and not report.passed) or report.failed:
        return report.outcome, "", ""
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    config = _CONFIG[0] if _CONFIG else None
    if config is None:
        return
    st = _state(config)
    item_case, item_col = _REPORT_KEYS.get(report.nodeid, (report.nodeid, GROUP))
    if report.failed:  # in setup, call or teardown
        outcome = "FAIL"
        st.failures.append((item_case, item_col, str(report.longrepr)))
    elif report.skipped:
        outcome = "skip"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        st.skips[reason.removeprefix("Skipped: ")] += 1
    elif report.when == "call":
        outcome = "pass"
    else:
        return
    prev = st.results.get((item_case, item_col))
    if prev == "FAIL":
        return
    st.results[(item_case, item_col)] = outcome
    if prev is None:
        st.done += 1
        tw = config.get_terminal_writer()
        tw.line(
            f"[{st.done:3}/{st.total}] {outcome:4}  {item_case:34} {item_col:10} {report.duration:5.1f} s",
            red=outcome == "FAIL",
            green=outcome == "pass",
        )


_CONFIG: list[pytest.Config] = []
_REPORT_KEYS: dict[str, tuple[str, str]] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    _CONFIG[:] = [session.config]
    for item in session.items:
        _REPORT_KEYS[item.nodeid] = (case_name(item), column(item))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    st = _state(config)
    tw = terminalreporter._tw
    if st.listing:
        return
    for case, col, text in st.failures:
        tw.line("")
        tw.sep("-", f"FAIL {case} [{col}]", red=True)
        for line in text.splitlines():
            tw.line(line)
    tw.line("")
    _print_matrix(tw, st)
    for capability, names in st.unclaimed.items():
        tw.line(f"{capability}: not claimed by {', '.join(names)}")
    if st.skips:
        tw.line("")
        tw.line("skipped:")
        for reason, n in st.skips.most_common():
            tw.line(f"  {n:3} x {reason}")
    tw.line("")
    _print_uncovered(tw, st)
    counts = Counter(st.results.values())
    tw.line("")
    tw.line(
        f"xlock-conformance: {counts['pass']} passed, {counts['FAIL']} failed, {counts['skip']} skipped "
        f"in {time.monotonic() - st.started:.1f} s",
        bold=True,
        red=counts["FAIL"] > 0,
        green=counts["FAIL"] == 0,
    )


def _print_matrix(tw: Any, st: State) -> None:
    cols = [c for c in st.columns() if any(k[1] == c for k in st.results)]
    rows = [c for c in st.case_ids if any(k[0] == c for k in st.results)]
    if not rows:
        tw.line("(no case ran)")
        return
    width = max(len(r) for r in rows) + 4
    colw = [max(len(c), 4) + 2 for c in cols]
    tw.line("case".ljust(width) + "".join(c.ljust(w) for c, w in zip(cols, colw)), bold=True)
    current = None
    for row in rows:
        module = st.case_module[row]
        if module != current:
            current = module
            tw.line(module.removeprefix("test_") + ":", bold=True)
        cells = []
        for c, w in zip(cols, colw):
            cells.append(st.results.get((row, c), ".").ljust(w))
        line = ("  " + row).ljust(width) + "".join(cells)
        tw.line(line.rstrip(), red="FAIL" in line)


def _print_uncovered(tw: Any, st: State) -> None:
    if st.repo is None:
        tw.line("(spec/xlock-1.md not found: use --repo to list MUST requirements without a case)")
        return
    cited = {i for ids in st.case_ids.values() for i in ids}
    missing = [i for i in must_ids(st.repo) if i not in cited]
    total = len(must_ids(st.repo))
    tw.line(f"MUST requirements of spec/xlock-1.md without a case ({len(missing)} of {total}):")
    tw.line("  " + (" ".join(missing) if missing else "none"))
