"""Small HTML pieces every page uses: escaping, numbers, bars, badges, buttons, the layout.

Everything interpolated goes through :func:`esc`; nothing here trusts its input.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from service.dashboard.csrf import FIELD

NAV = (("/runs", "Runs"), ("/datasets", "Datasets"), ("/failures", "Failures"),
       ("/queues", "Queues & workers"))


def esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def number(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}"


def size(value: Any) -> str:
    if value is None:
        return "—"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:,.0f} {unit}" if unit == "B" else f"{amount:,.1f} {unit}"
        amount /= 1024
    return f"{amount:,.1f} TiB"


def duration(seconds: Any) -> str:
    if seconds is None:
        return "—"
    if float(seconds) < 10:
        return f"{float(seconds):.1f} s"
    total = int(round(float(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def when(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f'<time datetime="{esc(value.isoformat())}">{esc(text)}</time>'
    return esc(value)


def rate(value: Any) -> str:
    return "—" if value is None else f"{float(value):,.0f} features/s"


def badge(status: Any) -> str:
    return f'<span class="badge status-{esc(status)}">{esc(status)}</span>'


def bar(percent: Any, label: str, *, key: str = "") -> str:
    """A progress bar; ``data-percent`` lets scripts and tests read it exactly."""
    value = 0.0 if percent is None else max(0.0, min(100.0, float(percent)))
    return (f'<div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
            f'aria-valuenow="{value:.1f}" data-percent="{value:.1f}" data-key="{esc(key)}">'
            f'<div class="fill" style="width: {value:.1f}%"></div>'
            f'<span class="label">{esc(label)}</span></div>')


def percent(value: Any) -> str:
    return "—" if value is None else f"{float(value):.0f} %"


def button(action: str, label: str, csrf: str, *, name: str = "", value: str = "",
           danger: bool = False, confirm: str = "", test_id: str = "") -> str:
    """A POST form with one button: state changes never happen on GET."""
    named = f' name="{esc(name)}" value="{esc(value)}"' if name else ""
    asks = f' data-confirm="{esc(confirm)}"' if confirm else ""
    tid = f' data-test="{esc(test_id)}"' if test_id else ""
    return (f'<form method="post" action="{esc(action)}" class="inline"{asks}>'
            f'<input type="hidden" name="{FIELD}" value="{esc(csrf)}">'
            f'<button type="submit" class="{"danger" if danger else ""}"{named}{tid}>'
            f"{esc(label)}</button></form>")


def table(headers: list[str], rows: list[list[str]], *, empty: str, cls: str = "") -> str:
    """Cells are HTML already (escape them with :func:`esc` when building rows)."""
    if not rows:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def main(content: str, *, live_ms: int | None) -> str:
    """The part of a page that live updates replace; without ``live_ms`` it stays put."""
    live = f' data-live="{live_ms}"' if live_ms else ""
    return f'<main id="main"{live}>{content}</main>'


def layout(title: str, active: str, body: str, csrf: str, api: str) -> str:
    links = "".join(f'<a href="{href}"{" class=active" if href == active else ""}>{esc(name)}</a>'
                    for href, name in NAV)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{esc(csrf)}">
<title>{esc(title)} · geoload</title>
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/dashboard.js" defer></script>
</head><body>
<header><a class="brand" href="/runs">geoload</a><nav>{links}</nav>
<span class="aside"><a href="{esc(api)}">JSON</a> · <a href="/metrics">metrics</a></span></header>
{body}
<footer><span id="updated"></span></footer>
</body></html>
"""
