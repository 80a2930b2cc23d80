"""Charts for the dashboard, rendered on the server as inline SVG (no script, no library):
pure functions of the disclosed figures, so a value hidden by the small-number rule is
drawn as a marked gap labelled "< 5", never as its number."""

from __future__ import annotations

from html import escape
from typing import Any

from buurtalert.review.effect.figures import SMALL_TEXT

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def grouped_bars(title: str, groups: list[str], series: dict[str, list[Any]], unit: str = "") -> str:
    """Bars per group (e.g. per week), one colour per series (e.g. per district)."""
    width, height, left, bottom, top = 720, 260, 48, 40, 28
    values = [v for vs in series.values() for v in map(_number, vs) if v is not None]
    peak = max(values, default=0.0) or 1.0
    plot_w, plot_h = width - left - 10, height - bottom - top
    slot = plot_w / max(len(groups), 1)
    bar = max(min(slot / (len(series) + 1), 28), 2)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 20 * len(series)}" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#333"/>',
        f'<text x="4" y="{top + 10}" font-size="11">{peak:g}{escape(unit)}</text>',
    ]
    for g, group in enumerate(groups):
        x0 = left + g * slot
        parts.append(
            f'<text x="{x0 + slot / 2:.1f}" y="{top + plot_h + 16}" font-size="11" '
            f'text-anchor="middle">{escape(group)}</text>'
        )
        for s, (name, vs) in enumerate(series.items()):
            x = x0 + (s + 0.5) * bar
            raw = vs[g] if g < len(vs) else None
            value = _number(raw)
            colour = PALETTE[s % len(PALETTE)]
            if value is None:
                if raw == SMALL_TEXT:
                    parts.append(
                        f'<text x="{x + bar / 2:.1f}" y="{top + plot_h - 4}" font-size="9" '
                        f'text-anchor="middle" fill="{colour}">{escape(SMALL_TEXT)}</text>'
                    )
                continue
            h = plot_h * value / peak
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar - 1:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(name)} {escape(group)}: {value:g}{escape(unit)}'
                "</title></rect>"
            )
    for s, name in enumerate(series):
        y = height + 20 * s
        parts.append(
            f'<rect x="{left}" y="{y - 10}" width="12" height="12" fill="{PALETTE[s % len(PALETTE)]}"/>'
        )
        parts.append(f'<text x="{left + 18}" y="{y}" font-size="12">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def weekly_chart(shown: dict[str, Any], key: str, title: str) -> str:
    """``key`` (e.g. ``reports_per_1000``) per week, one series per district."""
    districts = {n: f for n, f in shown["districts"].items() if f["weeks"]}
    weeks = sorted({w for f in districts.values() for w in f["weeks"]})
    series = {
        name: [figures["weeks"].get(week, {}).get(key, 0) for week in weeks]
        for name, figures in districts.items()
    }
    return grouped_bars(title, weeks, series)


def mix_chart(shown: dict[str, Any], key: str, title: str) -> str:
    """A mix (e.g. ``outcomes``) per district: one group per district, one series per kind."""
    names = list(shown["districts"])
    kinds = sorted({k for f in shown["districts"].values() for k in f[key]})
    series = {kind: [shown["districts"][n][key].get(kind, 0) for n in names] for kind in kinds}
    return grouped_bars(title, names, series)
