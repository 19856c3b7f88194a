"""Reliability suite: collects the fault-matrix outcomes and prints them as a grid."""

from __future__ import annotations

import pytest

_OUTCOMES: dict[tuple[str, str], str] = {}
#: cells in collection order (kind-major): the grid's row and column order
_ORDER: list[tuple[str, str]] = []
_SYMBOL = {"passed": "ok", "failed": "FAIL", "xfailed": "xfail", "xpassed": "XPASS"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "kind_name" in params and "fault" in params:
            _ORDER.append((str(params["kind_name"]), str(params["fault"])))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    cell = dict(report.user_properties).get("fault_cell")
    if not isinstance(cell, tuple):
        return
    key = (str(cell[0]), str(cell[1]))
    if hasattr(report, "wasxfail"):
        outcome = "xpassed" if report.passed else "xfailed"
    elif report.failed:
        outcome = "failed"
    elif report.when == "call" and report.passed:
        outcome = "passed"
    else:
        return
    # A failed teardown after a passed call still fails the cell.
    if _OUTCOMES.get(key) != "failed":
        _OUTCOMES[key] = outcome


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _OUTCOMES:
        return
    # Collection order, so that the grid reads the same whatever order the cells ran in.
    cells = [*_ORDER, *_OUTCOMES]
    kinds = [k for k in dict.fromkeys(k for k, _ in cells) if any(c[0] == k for c in _OUTCOMES)]
    faults = [f for f in dict.fromkeys(f for _, f in cells) if any(c[1] == f for c in _OUTCOMES)]
    width = max(len(f) for f in faults) + 2
    column = max(8, *(len(k) + 2 for k in kinds))
    terminalreporter.write_sep("=", "fault matrix (watch kind x fault)")
    terminalreporter.write_line(" " * width + "".join(f"{k:>{column}}" for k in kinds))
    for fault in faults:
        row = "".join(f"{_SYMBOL.get(_OUTCOMES.get((k, fault), ''), '-'):>{column}}" for k in kinds)
        terminalreporter.write_line(f"{fault:<{width}}{row}")
