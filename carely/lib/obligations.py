"""Pytest plugin: tie tests to SPEC rule ids and report which rules are proven.

Tag a test with ``@pytest.mark.obligation("DSR-9")`` (several ids allowed).
``pytest --obligations-report=FILE`` writes
``{"ID": {"passed": n, "failed": n, "skipped": n, "tests": [...]}}`` for every id listed in
docs/obligations.md, zero where no test proves it. A test tagged with an id that the list does not
know fails at collection, so a typo cannot pass as proof.

Loaded with ``-p carely.lib.obligations`` (pyproject addopts); it imports nothing from Django.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

OBLIGATIONS_FILE = Path(__file__).resolve().parents[2] / "docs" / "obligations.md"
_ID_LINE = re.compile(r"^- ([A-Z]+-\d+):", re.MULTILINE)
_PROPERTY = "obligations"


def known_ids(path: Path = OBLIGATIONS_FILE) -> list[str]:
    return _ID_LINE.findall(path.read_text(encoding="utf-8"))


def _ids_of(item: pytest.Item) -> list[str]:
    ids: list[str] = []
    for marker in item.iter_markers("obligation"):
        ids.extend(str(arg) for arg in marker.args)
    return ids


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--obligations-report",
        metavar="FILE",
        default=None,
        help="write a JSON report of SPEC rule ids and the tests that prove them",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "obligation(*ids): SPEC rule ids this test proves")
    config.pluginmanager.register(ObligationRecorder(config), "carely-obligation-recorder")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    known = set(known_ids())
    for item in items:
        unknown = [i for i in _ids_of(item) if i not in known]
        if unknown:
            raise pytest.UsageError(
                f"{item.nodeid} is tagged with {', '.join(unknown)}, which docs/obligations.md "
                "does not list; fix the id or add the rule there"
            )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    # user_properties travel with the report, so this also works under pytest-xdist.
    ids = _ids_of(item)
    if ids:
        report.user_properties.append((_PROPERTY, ids))


def _report_ids(report: pytest.TestReport) -> Iterable[str]:
    for name, value in report.user_properties:
        if name == _PROPERTY and isinstance(value, list):
            yield from value


def build_report(
    results: dict[str, str], ids_by_test: dict[str, list[str]], known: list[str]
) -> dict[str, dict[str, Any]]:
    report: dict[str, dict[str, Any]] = {
        rule: {"passed": 0, "failed": 0, "skipped": 0, "tests": []} for rule in known
    }
    for nodeid, outcome in sorted(results.items()):
        for rule in ids_by_test.get(nodeid, []):
            entry = report.setdefault(rule, {"passed": 0, "failed": 0, "skipped": 0, "tests": []})
            entry[outcome] += 1
            entry["tests"].append(nodeid)
    return report


class ObligationRecorder:
    """Collects each tagged test's outcome (any failed phase wins) and writes the report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: dict[str, str] = {}
        self.ids_by_test: dict[str, list[str]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        ids = list(_report_ids(report))
        if not ids:
            return
        self.ids_by_test[report.nodeid] = ids
        previous = self.results.get(report.nodeid)
        if report.failed:
            self.results[report.nodeid] = "failed"
        elif report.skipped and previous != "failed":
            self.results[report.nodeid] = "skipped"
        elif report.when == "call" and report.passed and previous is None:
            self.results[report.nodeid] = "passed"

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        path = self.config.getoption("--obligations-report")
        if not path or hasattr(self.config, "workerinput"):
            return
        report = build_report(self.results, self.ids_by_test, known_ids())
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def format_table(report: dict[str, dict[str, Any]]) -> str:
    """The report as a plain-text table: one line per rule, unproven ones marked."""
    lines = [f"{'rule':<8} {'passed':>6} {'failed':>6} {'skipped':>7}  status"]
    proven = 0
    for rule, entry in report.items():
        if entry["failed"]:
            status = "FAILING"
        elif entry["passed"]:
            status = "proven"
            proven += 1
        else:
            status = "-- no passing test"
        lines.append(
            f"{rule:<8} {entry['passed']:>6} {entry['failed']:>6} {entry['skipped']:>7}  {status}"
        )
    lines.append(f"{proven} of {len(report)} rules have passing tests")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m carely.lib.obligations REPORT.json", file=sys.stderr)
        return 2
    report = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    print(format_table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
