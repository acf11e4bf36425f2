"""Counts in messages people read: "1 cell", "8 unchanged cells"."""


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1 (``noun`` may carry an adjective: the
    last word takes the "s")."""
    return f"{n} {noun}" + ("" if n == 1 else "s")
