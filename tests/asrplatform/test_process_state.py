"""One registry of the process's singletons: built once, and reset for tests in one call."""

import pytest

from asrplatform import process_state


class Thing:
    def __init__(self) -> None:
        self.items: list[int] = []
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def reset(self) -> None:
        self.items.clear()


def test_a_singleton_is_built_once_per_key():
    built = []

    def factory() -> Thing:
        built.append(1)
        return Thing()

    first = process_state.get(("test.thing", "a"), factory)
    again = process_state.get(("test.thing", "a"), factory)
    other = process_state.get(("test.thing", "b"), factory)

    assert first is again and other is not first
    assert len(built) == 2


def test_reset_closes_and_drops_what_it_can_rebuild():
    first = process_state.get(("test.closable",), Thing, close=Thing.close)

    process_state.reset()

    assert first.closed
    assert process_state.get(("test.closable",), Thing, close=Thing.close) is not first


def test_reset_empties_in_place_what_other_modules_hold_by_name():
    held = process_state.get(("test.held",), Thing, clear=Thing.reset)
    held.items.append(1)

    process_state.reset()

    assert process_state.get(("test.held",), Thing, clear=Thing.reset) is held
    assert held.items == []


def test_a_put_value_is_what_get_returns_until_reset():
    def missing() -> Thing:
        raise LookupError("not put")

    installed = process_state.put(("test.put",), Thing())

    assert process_state.get(("test.put",), missing) is installed
    process_state.reset()
    with pytest.raises(LookupError):
        process_state.get(("test.put",), missing)
