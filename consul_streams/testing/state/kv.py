"""The KV table of the dev agent: entries, tombstones, locks and lock delays.

Writes take the index they are written at (``idx``) so that a transaction can apply many
operations at one index and roll back on failure; :meth:`KVState.commit` then allocates that
index in the StateStore and wakes watchers of the touched keys. An operation that changes
nothing (identical rewrite, failed cas) leaves the index and watchers alone.
"""

from __future__ import annotations

import base64
import bisect
import builtins
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import StateStore

__all__ = ["MAX_LOCK_DELAY", "KVEntry", "KVState"]

#: Consul's MaxLockDelay: longer lock delays are not honoured.
MAX_LOCK_DELAY = 60.0


@dataclass(slots=True)
class KVEntry:
    """One stored key (Consul's DirEntry)."""

    key: str
    value: bytes
    flags: int = 0
    lock_index: int = 0
    session: str = ""
    create_index: int = 0
    modify_index: int = 0

    def to_json(self, *, with_value: bool = True) -> dict[str, Any]:
        """The entry as Consul serialises it (field order, null value, omitted Session)."""
        out: dict[str, Any] = {"LockIndex": self.lock_index, "Key": self.key, "Flags": self.flags}
        out["Value"] = base64.b64encode(self.value).decode() if with_value and self.value else None
        if self.session:
            out["Session"] = self.session
        out["CreateIndex"] = self.create_index
        out["ModifyIndex"] = self.modify_index
        return out


class KVState:
    """KV entries in key order, tombstones, the table index and lock-delay windows."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.reset()

    # -- SubStore ------------------------------------------------------------------------------

    def reset(self) -> None:
        self.entries: dict[str, KVEntry] = {}
        self.sorted_keys: list[str] = []
        self.tombstones: dict[str, int] = {}
        self.table_index = 0
        self.lock_delays: dict[str, float] = {}
        self._dirty: set[str] = set()
        #: per key written in the open transaction: (entry, tombstone) before its first write
        self._journal: dict[str, tuple[KVEntry | None, int | None]] | None = None

    def shift_indexes(self, delta: int) -> None:
        for entry in self.entries.values():
            entry.create_index = max(1, entry.create_index + delta)
            entry.modify_index = max(1, entry.modify_index + delta)
        self.tombstones = {k: max(1, v + delta) for k, v in self.tombstones.items()}
        self.table_index = max(0, self.table_index + delta)

    # -- transactions --------------------------------------------------------------------------

    def snapshot(self) -> tuple[Any, ...]:
        """Start a transaction: from here on each write journals what it replaces.

        The cost is O(the keys the transaction writes), not O(the store): the journal keeps,
        per touched key, the entry and tombstone it had before its first write.
        :meth:`rollback` restores them; :meth:`commit` drops the journal.
        """
        self._journal = {}
        return (self.table_index, dict(self.lock_delays))

    def rollback(self, snap: tuple[Any, ...]) -> None:
        """Undo every write since ``snap`` was taken."""
        table_index, delays = snap
        for key, (entry, tomb) in (self._journal or {}).items():
            present = key in self.entries
            if entry is None:
                if present:
                    del self.entries[key]
                    self.sorted_keys.pop(bisect.bisect_left(self.sorted_keys, key))
            else:
                if not present:
                    bisect.insort(self.sorted_keys, key)
                self.entries[key] = entry
            if tomb is None:
                self.tombstones.pop(key, None)
            else:
                self.tombstones[key] = tomb
        self.table_index, self.lock_delays = table_index, delays
        self._journal = None
        self._dirty = set()

    def _remember(self, key: str) -> None:
        """Journal ``key``'s state before the first write of the open transaction."""
        journal = self._journal
        if journal is not None and key not in journal:
            journal[key] = (self.entries.get(key), self.tombstones.get(key))

    def pending_index(self) -> int:
        """The index the next commit will use."""
        return self.store.index + 1

    def commit(self) -> bool:
        """Allocate the pending index if anything changed and wake the touched keys' watchers."""
        self._journal = None
        if not self._dirty:
            return False
        dirty, self._dirty = self._dirty, set()
        self.store.next_index()
        for key in dirty:
            self.store.notify_key("kv", key)
        return True

    # -- reads ---------------------------------------------------------------------------------

    def get(self, key: str) -> KVEntry | None:
        return self.entries.get(key)

    def list(self, prefix: str) -> builtins.list[KVEntry]:
        """Entries whose key starts with ``prefix``, in byte order."""
        start = bisect.bisect_left(self.sorted_keys, prefix)
        out: builtins.list[KVEntry] = []
        for key in self.sorted_keys[start:]:
            if not key.startswith(prefix):
                break
            out.append(self.entries[key])
        return out

    def list_index(self, prefix: str, entries: builtins.list[KVEntry]) -> int:
        """The index of a prefix listing (entries and the prefix's tombstones)."""
        if not prefix:
            return self.table_index
        index = max((e.modify_index for e in entries), default=0)
        for key, tomb in self.tombstones.items():
            if tomb > index and key.startswith(prefix):
                index = tomb
        return index or self.table_index

    # -- writes --------------------------------------------------------------------------------

    def _put(self, entry: KVEntry, idx: int) -> None:
        if self._journal is not None:
            self._remember(entry.key)
        if entry.key not in self.entries:
            bisect.insort(self.sorted_keys, entry.key)
        self.entries[entry.key] = entry
        self.tombstones.pop(entry.key, None)
        entry.modify_index = idx
        self.table_index = idx
        self._dirty.add(entry.key)

    def set(
        self,
        key: str,
        value: bytes,
        flags: int,
        idx: int,
        *,
        session: str | None = None,
        lock_index: int | None = None,
    ) -> None:
        """Write ``key``; identical rewrites change nothing (no index, no wake-up)."""
        old = self.entries.get(key)
        new = KVEntry(
            key,
            value,
            flags,
            lock_index=old.lock_index if lock_index is None and old else lock_index or 0,
            session=(old.session if old else "") if session is None else session,
            create_index=old.create_index if old else idx,
        )
        if old is not None and (
            old.value == new.value
            and old.flags == new.flags
            and old.session == new.session
            and old.lock_index == new.lock_index
        ):
            return
        self._put(new, idx)

    def cas(self, key: str, value: bytes, flags: int, index: int, idx: int) -> bool:
        """Set only if ``index`` is 0 and the key is absent, or equals its ModifyIndex."""
        old = self.entries.get(key)
        if (index == 0 and old is not None) or (
            index != 0 and (old is None or old.modify_index != index)
        ):
            return False
        self.set(key, value, flags, idx)
        return True

    def in_lock_delay(self, key: str) -> bool:
        """Whether ``key`` is inside the lock delay of an invalidated session.

        Consul checks this before the state store (``kvsPreApply``), so callers check it
        before session validation and :meth:`lock`.
        """
        return self.store.now() < self.lock_delays.get(key, float("-inf"))

    def lock(self, key: str, value: bytes, flags: int, session: str, idx: int) -> bool:
        """Acquire ``key`` for ``session`` (False if another session holds it).

        Like ``kvsLockTxn`` this does not look at the lock delay: see :meth:`in_lock_delay`.
        """
        old = self.entries.get(key)
        if old is not None and old.session and old.session != session:
            return False
        if old is not None and old.session == session:
            self.set(key, value, flags, idx)
            return True
        lock_index = (old.lock_index if old else 0) + 1
        self.set(key, value, flags, idx, session=session, lock_index=lock_index)
        return True

    def unlock(self, key: str, value: bytes, flags: int, session: str, idx: int) -> bool:
        """Release ``key`` held by ``session`` (False when absent or held by someone else)."""
        old = self.entries.get(key)
        if old is None or old.session != session:
            return False
        self.set(key, value, flags, idx, session="")
        return True

    def delete(self, key: str, idx: int) -> None:
        """Delete ``key`` leaving a tombstone (no-op, no tombstone, when absent)."""
        if key not in self.entries:
            return
        self._remember(key)
        del self.entries[key]
        self.sorted_keys.pop(bisect.bisect_left(self.sorted_keys, key))
        self.tombstones[key] = idx
        self.table_index = idx
        self._dirty.add(key)

    def delete_cas(self, key: str, index: int, idx: int) -> bool:
        """Delete only if the ModifyIndex equals ``index``; True for a missing key."""
        old = self.entries.get(key)
        if old is None:
            return True
        if old.modify_index != index:
            return False
        self.delete(key, idx)
        return True

    def delete_tree(self, prefix: str, idx: int) -> None:
        """Delete every key starting with ``prefix``."""
        for entry in self.list(prefix):
            self.delete(entry.key, idx)

    def release_session(self, session: str, *, delete: bool, lock_delay: float, idx: int) -> None:
        """Invalidate ``session``: release (or delete) its keys and start their lock delay."""
        until = self.store.now() + min(lock_delay, MAX_LOCK_DELAY)
        for entry in [e for e in self.entries.values() if e.session == session]:
            if lock_delay > 0:
                self.lock_delays[entry.key] = until
            if delete:
                self.delete(entry.key, idx)
            else:
                self.set(entry.key, entry.value, entry.flags, idx, session="")
