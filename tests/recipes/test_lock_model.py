"""Randomized fault schedules against locks, semaphores and elections (issue 10's proof).

Each case plays seeded schedules (see ``_model.py``) on a virtual-time loop and asserts:
no more than ``limit`` bodies ever run at once; fencing tokens strictly increase across terms;
after the last fault heals some contender holds (still, or again) within TTL + lock_delay + the
backoff cap; and nothing (session, held key) is left behind once
the contenders stop and the TTLs run out.

Why this can hold at all: Consul never invalidates a TTL session before TTL has passed since it
last received a renewal (``agent/consul/session_ttl.go``: ``resetSessionTimer`` arms
``ttl * SessionTTLMultiplier``), and the holder's lease ends 0.9 TTL after the *start* of its
last successful renewal; lock-delay (``agent/consul/state/session.go``: ``deleteSessionTxn``
sets it on every held key) covers an operator destroying the session of a partitioned holder.
"""

from __future__ import annotations

import pytest

from consul_streams.testing._warp import run_warped

from ._model import (
    BACKOFF_CAP,
    TTL,
    Kind,
    liveness_gap,
    make_schedule,
    overlaps,
    run_schedule,
    tokens_increase,
)

CASES: list[tuple[Kind, float, int]] = [
    # (recipe, lock_delay, schedules)
    ("lock", 15.0, 60),
    ("lock", 0.0, 40),
    ("semaphore", 15.0, 25),
    ("semaphore", 0.0, 15),
    ("elect", 15.0, 35),
    ("elect", 0.0, 25),
]


@pytest.mark.parametrize(("kind", "lock_delay", "count"), CASES)
def test_random_fault_schedules_keep_mutual_exclusion_and_liveness(
    kind: Kind, lock_delay: float, count: int
) -> None:
    for seed in range(count):
        schedule = make_schedule(seed, kind, lock_delay=lock_delay)
        run = run_warped(run_schedule(schedule))
        where = f"seed={seed} {kind} lock_delay={lock_delay} faults={schedule.faults}"
        assert run.errors == [], where
        assert overlaps(run) == [], where
        if kind != "semaphore":
            assert tokens_increase(run), f"{where}: tokens {run.log}"
        gap = liveness_gap(run)
        bound = TTL + lock_delay + BACKOFF_CAP
        assert gap is not None, f"{where}: nobody ran after the faults healed"
        assert gap <= bound, f"{where}: {gap:.1f}s from heal to a running body"
        assert run.sessions_left == [], where
        assert run.held_left == [], where
