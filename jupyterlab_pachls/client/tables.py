"""Rows as tables: HTML in Jupyter, aligned text elsewhere, a DataFrame on request."""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any, Iterable


def format_cell(value: Any, limit: int | None = None) -> str:
    """A value as table text: lists joined by ', ', datetimes to the second, None as ''."""
    if value is None:
        text = ""
    elif isinstance(value, datetime):
        text = value.isoformat(sep=" ", timespec="seconds")
    elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text


class Table(list):
    """A list of row dicts that renders as an HTML table in Jupyter and as aligned text elsewhere.

    ``to_frame()`` gives a pandas DataFrame with the same columns.
    """

    def __init__(self, rows: Iterable[dict] = (), columns: Iterable[str] | None = None, title: str = "") -> None:
        super().__init__(rows)
        if columns is None:
            seen: dict[str, None] = {}
            for row in self:
                for key in row:
                    seen.setdefault(key, None)
            columns = seen
        self.columns = list(columns)
        self.title = title

    def to_frame(self):
        """The rows as a ``pandas.DataFrame`` (needs pandas)."""
        import pandas

        return pandas.DataFrame([dict(row) for row in self], columns=self.columns)

    def to_text(self, width: int = 60) -> str:
        if not self.columns:
            return f"({self.title or 'nothing'})" if not self else "\n".join(map(str, self))
        cells = [[format_cell(row.get(c), width) for c in self.columns] for row in self]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(self.columns, widths)).rstrip(),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
        if not self:
            lines.append(f"(no {self.title or 'rows'})")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in self.columns)
        body = []
        for row in self:
            tds = []
            for c in self.columns:
                full = format_cell(row.get(c))
                short = format_cell(row.get(c), 300)
                title = f" title='{html.escape(full, quote=True)}'" if short != full else ""
                tds.append(f"<td style='text-align:left'{title}>{html.escape(short)}</td>")
            body.append("<tr>" + "".join(tds) + "</tr>")
        if not self:
            body.append(f"<tr><td colspan='{max(len(self.columns), 1)}'><em>no "
                        f"{html.escape(self.title or 'rows')}</em></td></tr>")
        return (f"<table class='pachls-table'><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.to_text())

    def __repr__(self) -> str:
        return f"Table({list.__repr__(self)})"
