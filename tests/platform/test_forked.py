"""``carely.lib.forked.run_ahead``: items in order from a forked child; an expected error comes
back as itself, with its attributes; anything else as a RuntimeError with the child's traceback."""

from __future__ import annotations

import pytest

from carely.lib.forked import run_ahead
from contacts.csv_io import CsvError


def _items(n: int, fail: BaseException | None = None):
    def produce():
        yield from range(n)
        if fail is not None:
            raise fail

    return produce


def test_items_arrive_in_order():
    assert list(run_ahead(_items(50), name="t", what="the test reader")) == list(range(50))


def test_an_expected_error_is_raised_again_with_its_attributes_after_the_items_before_it():
    got = []
    with pytest.raises(CsvError) as caught:
        for item in run_ahead(
            _items(3, CsvError("Row 7 has a broken quote.", row=7)),
            name="t",
            what="the test reader",
            expected=(CsvError,),
        ):
            got.append(item)
    assert got == [0, 1, 2]
    assert caught.value.row == 7
    assert str(caught.value) == "Row 7: Row 7 has a broken quote."


def test_anything_else_is_a_runtime_error_with_the_childs_traceback():
    with pytest.raises(RuntimeError, match=r"(?s)the test reader failed:.*ZeroDivisionError: boom"):
        list(run_ahead(_items(1, ZeroDivisionError("boom")), name="t", what="the test reader"))
