"""A failed transaction leaves the KV table exactly as it was (journal rollback, O(writes)).

Consul applies a transaction in one state-store transaction and aborts it whole on the first
failing operation (``agent/consul/state/txn.go`` ``(*Store).TxnRW``): nothing it wrote stays.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consul_streams.testing.state.kv import KVState
from consul_streams.testing.state.store import StateStore

_keys = st.sampled_from(["a", "a/b", "a/c", "b", "c/d", "c/e"])
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("set"), _keys, st.binary(max_size=3)),
        st.tuples(st.just("delete"), _keys, st.just(b"")),
        st.tuples(st.just("delete_tree"), st.sampled_from(["a", "c/", ""]), st.just(b"")),
    ),
    max_size=8,
)


def _state(kv: KVState) -> tuple[Any, ...]:
    return (
        {k: (e.value, e.flags, e.create_index, e.modify_index) for k, e in kv.entries.items()},
        list(kv.sorted_keys),
        dict(kv.tombstones),
        kv.table_index,
    )


def _apply(kv: KVState, ops: list[tuple[str, str, bytes]], idx: int) -> None:
    for verb, key, value in ops:
        if verb == "set":
            kv.set(key, value, 0, idx)
        elif verb == "delete":
            kv.delete(key, idx)
        else:
            kv.delete_tree(key, idx)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(setup=_ops, txn=_ops)
def test_rollback_restores_entries_order_tombstones_and_index(
    setup: list[tuple[str, str, bytes]], txn: list[tuple[str, str, bytes]]
) -> None:
    kv = KVState(StateStore())
    _apply(kv, setup, kv.pending_index())
    kv.commit()
    before = _state(kv)
    snap = kv.snapshot()
    _apply(kv, txn, kv.pending_index())
    kv.rollback(snap)
    assert _state(kv) == before
    assert kv.sorted_keys == sorted(kv.entries)


def test_commit_ends_the_journal() -> None:
    """After a committed transaction, plain writes are not journaled (nothing grows)."""
    kv = KVState(StateStore())
    kv.snapshot()
    kv.set("a", b"1", 0, kv.pending_index())
    kv.commit()
    kv.set("b", b"2", 0, kv.pending_index())
    assert kv._journal is None
