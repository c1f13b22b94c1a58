"""The fault suite's store fault injector (tests/store_faults.py) fails the way the store does."""

from __future__ import annotations

import pytest

from lib.errors import StateStoreUnavailable
from tests.store_faults import FAULT_KINDS, OPERATIONS, READS, FaultyStore


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_an_injected_fault_is_the_stores_own_error_and_only_a_timed_out_write_lands(harness, store, kind):
    store = FaultyStore(store)
    store.fail("put_meta", kind)
    with pytest.raises(StateStoreUnavailable, match="put_meta"):
        store.put_meta("probe", {"n": 1})
    assert (store.get_meta("probe") is not None) == (kind == "timeout")
    store.fail("get_meta", kind, skip=1)
    store.get_meta("probe")  # the one let through
    with pytest.raises(StateStoreUnavailable, match="get_meta"):
        store.get_meta("probe")
    assert store.injected == [f"put_meta:{kind}", f"get_meta:{kind}"]


def test_every_read_the_injector_names_is_a_call_of_the_store():
    assert READS <= OPERATIONS
    with pytest.raises(ValueError, match="unknown store operation"):
        FaultyStore(None).fail("no_such_call", "timeout")  # type: ignore[arg-type]
