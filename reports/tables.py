"""Terminal and Markdown tables from a DataFrame, every number with its unit.

A column spec is ``(column, header, fmt)``; ``fmt`` is a format string for one value, a
callable, or a unit of :func:`reports.units.fmt` given as ``"unit:pJ"``. Cells carry
their unit ("1.98 ms", "4.31 %"), scaled per cell by the one formatter.

Fitting a width (``format_table(..., width=W)``): no line is longer than ``W``. Text
columns are truncated with an ellipsis (the first column, a layer name, in the middle so
its distinguishing end stays: "layer3.0…ample.0"), first the first column down to 12
characters, then the others down to 6; if the table is still too wide, trailing columns
are left out and one line after the table names them.
"""
from __future__ import annotations

import textwrap

from .units import fmt as _unit_fmt

ELLIPSIS = "…"
GAP = "  "


def _fmt(v, fmt) -> str:
    if callable(fmt):
        return fmt(v)
    if isinstance(fmt, str) and fmt.startswith("unit:"):
        return _unit_fmt(v, fmt[5:])
    return format(v, fmt) if fmt else str(v)


def _cells(df, spec):
    head = [h for _, h, _ in spec]
    body = [[_fmt(row[c], f) for c, _, f in spec] for _, row in df.iterrows()]
    return head, body


def truncate(s: str, n: int, middle: bool = False) -> str:
    """``s`` cut to ``n`` characters with an ellipsis (at the end, or in the ``middle``)."""
    if len(s) <= n:
        return s
    if n <= 1:
        return s[:n]
    if middle:
        tail = (n - 1) // 2
        return s[:n - 1 - tail] + ELLIPSIS + s[len(s) - tail:]
    return s[:n - 1] + ELLIPSIS


def wrap(text: str, width: int | None, indent: str = "  ") -> str:
    """``text`` (one or more lines) wrapped at spaces to ``width`` (None: as it is);
    continuation lines are indented by ``indent`` beyond the line's own indentation."""
    if not width:
        return text
    out = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        lead = line[:len(line) - len(line.lstrip())]
        out += textwrap.wrap(line.lstrip(), width, initial_indent=lead,
                             subsequent_indent=lead + indent, break_on_hyphens=False)
    return "\n".join(out)


def _fit(head, body, numeric, width):
    """Truncate text columns, then drop trailing ones, until the table fits ``width``;
    returns (head, body, numeric, names of the columns dropped)."""
    widths = [max(len(x) for x in col) for col in zip(head, *body)]

    def total():
        return sum(widths) + len(GAP) * (len(widths) - 1)
    for i, floor in [(0, 12)] + [(i, 6) for i in range(1, len(widths))]:
        if total() <= width:
            break
        if numeric[i] or widths[i] <= floor:
            continue
        widths[i] = max(floor, len(head[i]), widths[i] - (total() - width))
    dropped = []
    while total() > width and len(widths) > 1:
        dropped.insert(0, head[len(widths) - 1])
        widths.pop()
    n = len(widths)
    body = [[truncate(c, widths[i], middle=i == 0) for i, c in enumerate(r[:n])] for r in body]
    head = [truncate(h, widths[i]) for i, h in enumerate(head[:n])]
    return head, body, numeric[:n], dropped


def format_table(df, spec, total: dict | None = None, width: int | None = None,
                 hint: str = "") -> str:
    """A fixed-width text table; numbers right-aligned; optional total row. ``width``:
    fit it (see the module docstring); ``hint`` ends the line naming columns left out."""
    head, body = _cells(df, spec)
    if total is not None:
        body.append([_fmt(total[c], f) if c in total else "" for c, _, f in spec])
    numeric = [all(is_number(r[i]) for r in body if r[i]) for i in range(len(head))]
    dropped = []
    if width:
        head, body, numeric, dropped = _fit(head, body, numeric, width)
    widths = [max(len(x) for x in col) for col in zip(head, *body)]

    def line(cells):
        return GAP.join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric))
    out = [line(head), GAP.join("-" * w for w in widths)]
    out += [line(r) for r in body[:len(body) - (total is not None)]]
    if total is not None:
        out += [GAP.join("-" * w for w in widths), line(body[-1])]
    out = [x.rstrip() for x in out]
    if dropped:
        out.append(wrap(f"({len(dropped)} column(s) left out to fit {width} characters: "
                        f"{', '.join(dropped)}{hint})", width))
    return "\n".join(out)


def markdown_table(df, spec, total: dict | None = None) -> str:
    head, body = _cells(df, spec)
    if total is not None:
        body.append([_fmt(total[c], f) if c in total else "" for c, _, f in spec])
        body[-1][0] = f"**{body[-1][0]}**"
    numeric = [all(is_number(r[i]) for r in body if r[i]) for i in range(len(head))]
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(out)


_SUFFIXES = ("%", "x", "pJ", "nJ", "µJ", "mJ", "J", "B", "kB", "MB", "GB", "TB", "ps", "ns",
             "µs", "ms", "s", "K", "M", "G", "T", "P", "W", "mW", "µW", "kW", "mm²", "TOPS/W",
             "Hz", "kHz", "MHz", "GHz", "B/s", "kB/s", "MB/s", "GB/s", "TB/s", "GOPS", "TOPS",
             "samples/s", "ops/B")


def is_number(s: str) -> bool:
    """A number, with or without the formatter's unit label ("1.98 ms", "4.31 %", "-")."""
    if s == "-":
        return True
    head, _, unit = s.rpartition(" ")
    if head and unit in _SUFFIXES:
        s = head
    elif s.endswith("x"):
        s = s[:-1]
    try:
        float(s.replace(",", ""))
        return True
    except ValueError:
        return False
