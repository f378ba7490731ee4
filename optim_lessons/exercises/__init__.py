"""Self-checks for the chapters' exercises, one module per chapter, named after it.

Every ``check_*`` function raises an ``AssertionError`` that says what is wrong, or prints what
it verified. The cell where a reader writes an answer calls the check through :func:`attempt`,
which prints "Not done" while the answer is still the placeholder ``...`` (or a function that
raises ``NotImplementedError``), "Not yet: <what is wrong>" for a wrong answer, and lets the
notebook run on either way. The solutions, at the end of each chapter, call the checks directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["attempt"]


def attempt(check: Callable[..., Any], *answers: Any, **options: Any) -> bool:
    """Run ``check(*answers, **options)`` on a reader's answer; return whether it passed.

    >>> def check_double(answer):
    ...     assert answer == 42, f"{answer} is not twice 21"
    ...     print("Right: 42")
    >>> attempt(check_double, ...)
    Not done: replace the ... with your answer, then run the cell again.
    False
    >>> attempt(check_double, 40)
    Not yet: 40 is not twice 21
    False
    >>> attempt(check_double, 42)
    Right: 42
    True
    """
    if any(answer is ... for answer in (*answers, *options.values())):
        print("Not done: replace the ... with your answer, then run the cell again.")
        return False
    try:
        check(*answers, **options)
    except NotImplementedError as error:
        print(f"Not done: {error or 'fill in the function'}, then run the cell again.")
        return False
    except AssertionError as error:
        print(f"Not yet: {error}")
        return False
    return True
