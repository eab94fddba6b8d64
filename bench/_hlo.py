"""A static summary of a compiled XLA program, for the speed table's evidence: how many
n-sized passes it makes and how much per-element work they hold.

From ``compiled.as_text()`` (the optimised HLO): the top-level instructions of the entry
computation are the passes XLA runs; an instruction whose result has at least ``n/2``
elements writes an n-sized buffer, and each n-sized operand it takes is an n-sized read.
Inside the fused computations, the per-element operations on arrays of at least ``n/2``
elements are counted by kind (transcendentals, divides, selects/compares).
"""

from __future__ import annotations

import re
from collections import Counter

_SHAPE = re.compile(r"^\s*(?:ROOT\s+)?%(\S+)\s*=\s*(\w+)\[([\d,]*)\]\S*\s+([\w-]+)\(([^)]*)\)")
TRANSCENDENTAL = {"exponential", "log", "log-plus-one", "exponential-minus-one", "tanh",
                  "erf", "lgamma", "digamma", "power", "sqrt", "rsqrt", "cbrt", "logistic",
                  "atan2", "sine", "cosine", "tan"}
SELECT = {"select", "compare"}


def _size(dims: str) -> int:
    out = 1
    for d in dims.split(","):
        if d:
            out *= int(d)
    return out


def summary(text: str, n: int) -> dict[str, int]:
    """``{"writes", "reads", "passes", "transcendental", "divide", "select"}`` (n-sized)."""
    big = max(n // 2, 1)
    sizes: dict[str, int] = {}
    entry = False
    c = Counter()
    for line in text.splitlines():
        if line.startswith("ENTRY"):
            entry = True
            continue
        if line.startswith("}"):
            entry = False
            continue
        m = _SHAPE.match(line)
        if not m:
            continue
        name, _, dims, op, args = m.groups()
        size = _size(dims)
        sizes[name] = size
        if entry:
            if op in ("parameter", "constant", "tuple", "get-tuple-element", "bitcast"):
                continue
            operands = [a.strip().lstrip("%") for a in args.split(",") if a.strip()]
            reads = sum(1 for a in operands if sizes.get(a, 0) >= big)
            if size >= big or reads:
                c["passes"] += 1
            c["writes"] += size >= big
            c["reads"] += reads
        elif size >= big:
            if op in TRANSCENDENTAL:
                c["transcendental"] += 1
            elif op == "divide":
                c["divide"] += 1
            elif op in SELECT:
                c["select"] += 1
    return {k: c[k] for k in ("passes", "writes", "reads", "transcendental", "divide", "select")}


def fmt(s: dict[str, int]) -> str:
    return (f"{s['passes']} passes ({s['writes']} n-writes, {s['reads']} n-reads), "
            f"{s['transcendental']} transc., {s['divide']} div, {s['select']} sel/cmp")
