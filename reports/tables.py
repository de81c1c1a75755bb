"""Terminal and Markdown tables from a DataFrame, every number with its unit.

A column spec is ``(column, header, fmt)``; ``fmt`` is a format string for one value or
a callable. Headers carry the unit ("latency (ms)", "util (%)").
"""
from __future__ import annotations


def _fmt(v, fmt) -> str:
    if callable(fmt):
        return fmt(v)
    return format(v, fmt) if fmt else str(v)


def _cells(df, spec):
    head = [h for _, h, _ in spec]
    body = [[_fmt(row[c], f) for c, _, f in spec] for _, row in df.iterrows()]
    return head, body


def format_table(df, spec, total: dict | None = None) -> str:
    """A fixed-width text table; numbers right-aligned; optional total row."""
    head, body = _cells(df, spec)
    if total is not None:
        body.append([_fmt(total[c], f) if c in total else "" for c, _, f in spec])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    numeric = [all(_isnum(r[i]) for r in body if r[i]) for i in range(len(head))]

    def line(cells):
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric))
    out = [line(head), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in body[:len(body) - (total is not None)]]
    if total is not None:
        out += ["  ".join("-" * w for w in widths), line(body[-1])]
    return "\n".join(x.rstrip() for x in out)


def markdown_table(df, spec, total: dict | None = None) -> str:
    head, body = _cells(df, spec)
    if total is not None:
        body.append([_fmt(total[c], f) if c in total else "" for c, _, f in spec])
        body[-1][0] = f"**{body[-1][0]}**"
    numeric = [all(_isnum(r[i]) for r in body if r[i]) for i in range(len(head))]
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(out)


def _isnum(s: str) -> bool:
    try:
        float(s.replace(",", ""))
        return True
    except ValueError:
        return False
