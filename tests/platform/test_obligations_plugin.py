"""The obligations report lists every rule id and refuses ids it does not know."""

from __future__ import annotations

import json

from carely.lib.obligations import build_report, format_table, known_ids

pytest_plugins = ["pytester"]


def test_known_ids_match_the_spec_list():
    ids = known_ids()
    assert len(ids) == len(set(ids)) == 64
    assert ids[0] == "TEN-1" and "DSR-14" in ids and ids[-1] == "AI-3"


def test_report_counts_outcomes_and_lists_every_rule():
    report = build_report(
        {"t.py::a": "passed", "t.py::b": "failed", "t.py::c": "skipped"},
        {"t.py::a": ["TEN-1"], "t.py::b": ["TEN-1", "SEC-3"], "t.py::c": ["SEC-3"]},
        ["TEN-1", "SEC-3", "DSR-9"],
    )
    assert report["TEN-1"] == {
        "passed": 1,
        "failed": 1,
        "skipped": 0,
        "tests": ["t.py::a", "t.py::b"],
    }
    assert report["DSR-9"]["passed"] == 0 and report["DSR-9"]["tests"] == []
    table = format_table(report)
    assert "FAILING" in table and "no passing test" in table


def _write_suite(pytester):
    pytester.makepyfile(
        test_rules="""
        import pytest

        @pytest.mark.obligation("TEN-6")
        def test_proves_working_days():
            assert True

        @pytest.mark.obligation("TEN-2", "TEN-3")
        def test_fails():
            assert False
        """
    )


def test_plugin_writes_the_report(pytester):
    _write_suite(pytester)
    result = pytester.runpytest_subprocess(
        "-p", "no:django", "-p", "carely.lib.obligations", "--obligations-report=out.json"
    )
    result.assert_outcomes(passed=1, failed=1)
    report = json.loads((pytester.path / "out.json").read_text())
    assert report["TEN-6"]["passed"] == 1
    assert report["TEN-2"]["failed"] == 1 and report["TEN-3"]["failed"] == 1
    assert report["AI-3"] == {"passed": 0, "failed": 0, "skipped": 0, "tests": []}


def test_unknown_id_is_a_usage_error(pytester):
    pytester.makepyfile(
        test_typo="""
        import pytest

        @pytest.mark.obligation("TEN-99")
        def test_typo():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:django", "-p", "carely.lib.obligations")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*TEN-99*docs/obligations.md*"])
