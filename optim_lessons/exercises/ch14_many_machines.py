"""Self-checks for the exercises of chapter 14, optimizers on many machines.

Each check compares an answer with a number the chapter measured on real ranks, prints
"Correct", "Not yet" (with a hint) or "Not done" (the answer is still the stub), and returns
whether the answer is right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["check_adafactor_bytes", "check_zero_split"]


def check_zero_split(answer: Sequence[int] | None, measured: Sequence[int]) -> bool:
    """Is ``answer`` the number of Adam state numbers that ZeRO-1 leaves on each rank?"""
    if answer is None:
        print("Not done: replace None with a list of the state numbers on each rank.")
        return False
    if list(answer) == list(measured):
        print(f"Correct: {', '.join(f'{n:,}' for n in measured)} state numbers per rank.")
        return True
    print(
        f"Not yet: the ranks hold {', '.join(f'{n:,}' for n in measured)}. ZeRO takes the "
        "tensors largest first and gives each to the rank that holds the fewest numbers so far; "
        "Adam keeps two numbers per weight and one step count per tensor."
    )
    return False


def check_adafactor_bytes(
    bytes_per_step: Callable[[tuple[int, ...], int, int], float | None],
    shapes: Sequence[tuple[int, ...]],
    measured: float,
    world_size: int,
    itemsize: int,
) -> bool:
    """Does ``bytes_per_step(shape, world_size, itemsize)``, summed over ``shapes``, give the
    bytes that one rank's Adafactor sent per step (``measured``)?"""
    answers = [bytes_per_step(tuple(shape), world_size, itemsize) for shape in shapes]
    if any(a is None for a in answers):
        print("Not done: bytes_per_step returns None; return the bytes one rank sends.")
        return False
    total = sum(answers)
    if abs(total - measured) < 1e-9 * max(1.0, measured):
        print(f"Correct: {total:,.0f} bytes per step and rank, as measured.")
        return True
    print(
        f"Not yet: your formula gives {total:,.0f} bytes per step, the ranks sent "
        f"{measured:,.0f}. Count the numbers each all-reduce carries (a matrix split by rows "
        "needs its column sums and three norms; a vector two norms) and the ring's factor "
        "2 (N - 1) / N."
    )
    return False
