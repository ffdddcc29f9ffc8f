"""The harness every driver script shares: run one scenario against each
target (real PostgreSQL + pgvector first, as the control, then pgvshard's
embedded proxy and a `pgvshard shard`) and compare what each step saw with
the control's.

Usage: DRIVER.py control=PORT proxy=PORT shard=PORT

A scenario is a function of (port, Steps). It records what it observed
with `steps.saw(label, value)` and wraps statements that should fail in
`steps.error(label, fn)` (which records the SQLSTATE). The script prints
`NAME: N steps agree on control, proxy, shard` and exits 0, or prints the
first step where a target differs from the control and exits 1. Every
target runs in the same fresh-table state: the scenario drops what it
creates before creating it. Nothing here waits forever: async scenarios
run under a deadline, and the Rust test kills a script that outlives its
own.
"""

import asyncio
import sys
import traceback

DEADLINE_SECONDS = 60


def targets():
    """(name, port) pairs from argv, the control first."""
    pairs = [a.split("=", 1) for a in sys.argv[1:]]
    return [(name, int(port)) for name, port in pairs]


def sqlstate(e):
    """The SQLSTATE of a driver's database error, whatever the driver."""
    for attr in ("sqlstate", "pgcode"):
        code = getattr(e, attr, None)
        if isinstance(code, str):
            return code
    diag = getattr(e, "diag", None)
    if diag is not None and getattr(diag, "sqlstate", None):
        return diag.sqlstate
    orig = getattr(e, "orig", None)
    if orig is not None and orig is not e:
        return sqlstate(orig)
    cause = e.__cause__
    if cause is not None and cause is not e:
        return sqlstate(cause)
    args = getattr(e, "args", ())
    if args and isinstance(args[0], dict) and "C" in args[0]:
        return args[0]["C"]  # pg8000
    return None


class Near(float):
    """A float distance that equals another within float4 rounding
    (1e-6, relative above 1): a pgvshard shard sums float4 terms in
    another order than pgvector, so the last bits of a distance may differ
    (README, compatibility). Exact everywhere else."""

    def __eq__(self, other):
        return isinstance(other, float) and abs(self - other) <= 1e-6 * max(1.0, abs(self))

    def __ne__(self, other):
        return not self == other

    __hash__ = float.__hash__


def by_distance(rows):
    """Rows at equal distance may come in any order (PostgreSQL promises
    none): compare them sorted by (distance, row), after checking the
    order by distance; distances compare as Near."""
    ds = [r[-1] for r in rows]
    assert ds == sorted(ds), rows
    ordered = sorted((tuple(r) for r in rows), key=lambda r: (r[-1], r))
    return [r[:-1] + (Near(r[-1]),) for r in ordered]


def plain(value):
    """A value in a form steps compare: pgvector's Python types (and numpy
    arrays) as (type name, elements), anything else as it is."""
    name = type(value).__name__
    if name in ("Vector", "HalfVector", "Bit"):
        return (name, value.to_list())
    if name == "SparseVector":
        return (name, value.dimensions(), value.indices(), value.values())
    if name == "ndarray":
        return (name, value.tolist())
    return value


class StepFailed(Exception):
    """A step raised where the control did not (or the other way round)."""


class Steps:
    """What one target saw, step by step."""

    def __init__(self):
        self.seen = []

    def saw(self, label, value):
        self.seen.append((label, value))
        return value

    def error(self, label, fn):
        """Runs fn (a callable; awaited if it returns a coroutine via
        `aerror`) and records the SQLSTATE it failed with, or 'no error'."""
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - any driver's error class
            self.seen.append((label, ("error", sqlstate(e))))
            return e
        self.seen.append((label, "no error"))
        return None

    async def aerror(self, label, coro):
        """`error` for a coroutine."""
        try:
            await asyncio.wait_for(coro, DEADLINE_SECONDS / 4)
        except asyncio.TimeoutError:
            self.seen.append((label, "hung"))
            raise StepFailed(f"{label}: no answer within {DEADLINE_SECONDS / 4} s")
        except Exception as e:  # noqa: BLE001
            self.seen.append((label, ("error", sqlstate(e))))
            return e
        self.seen.append((label, "no error"))
        return None


def run_target(scenario, port):
    steps = Steps()
    try:
        result = scenario(port, steps)
        if asyncio.iscoroutine(result):
            asyncio.run(asyncio.wait_for(result, DEADLINE_SECONDS))
    except Exception:  # noqa: BLE001
        steps.seen.append(("raised", traceback.format_exc()))
    return steps.seen


def main(name, scenario):
    """Runs `scenario` on every target and compares with the first."""
    results = [(t, run_target(scenario, port)) for t, port in targets()]
    (control_name, control), others = results[0], results[1:]
    failed = False
    if control and control[-1][0] == "raised":
        print(f"{name}: the control raised:\n{control[-1][1]}")
        sys.exit(1)
    for target, seen in others:
        for i, want in enumerate(control):
            got = seen[i] if i < len(seen) else ("(missing)", None)
            if got != want:
                print(f"{name}: {target} differs from {control_name} at step {i} {want[0]!r}:")
                print(f"  {control_name}: {want[1]!r}")
                print(f"  {target}: {got[0]!r}: {got[1]!r}" if got[0] != want[0] else f"  {target}: {got[1]!r}")
                failed = True
                break
        else:
            if len(seen) > len(control):
                print(f"{name}: {target} has extra steps: {seen[len(control):]!r}")
                failed = True
    if failed:
        sys.exit(1)
    names = ", ".join(t for t, _ in results)
    print(f"{name}: {len(control)} steps agree on {names}")
