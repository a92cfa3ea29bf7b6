"""Charts as SVG, drawn on the server by pygal: the admin shows them inline and PDFs embed them,
so no page loads a script or a font from anywhere else (pygal's tooltips script, fetched from
its own site by default, is switched off)."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from types import ModuleType

_COLOURS = ("#1d4ed8", "#0f766e", "#b45309", "#7c3aed", "#be123c", "#374151")
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)


def _pygal() -> ModuleType:
    import pygal

    # pygal adds an import hook for its map plugins that only has the old finder API: Python
    # warns on every import that reaches it. Keepwell draws no maps, so the hook goes.
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]
    return pygal


def _style():  # type: ignore[no-untyped-def]
    _pygal()
    from pygal.style import Style

    return Style(background="transparent", plot_background="transparent", foreground="#111827",
                 foreground_strong="#111827", foreground_subtle="#6b7280", colors=_COLOURS,
                 font_family="DejaVu Sans, Arial, sans-serif", label_font_size=11, major_label_font_size=11,
                 legend_font_size=11, title_font_size=13)


def _render(chart) -> str:  # type: ignore[no-untyped-def]
    # The inline configuration script pygal writes would not run (the admin's CSP) and a PDF has
    # no use for it: the chart is the SVG alone.
    return _SCRIPT.sub("", str(chart.render(is_unicode=True)))


def _base(kind: str, title: str, labels: Sequence[str], width: int, height: int):  # type: ignore[no-untyped-def]
    chart = getattr(_pygal(), kind)(title=title, style=_style(), js=[], disable_xml_declaration=True, width=width,
                                 height=height, explicit_size=False, show_legend=True, legend_at_bottom=True,
                                 x_label_rotation=0, print_values=False, margin=8)
    chart.x_labels = list(labels)
    return chart


def line(title: str, labels: Sequence[str], series: dict[str, Sequence[int]], width: int = 640,
         height: int = 260) -> str:
    """A line chart (members over time, say): one line per series."""
    chart = _base("Line", title, labels, width, height)
    for name, values in series.items():
        chart.add(name, list(values))
    return _render(chart)


def bars(title: str, labels: Sequence[str], series: dict[str, Sequence[int]], width: int = 640,
         height: int = 260, stacked: bool = True) -> str:
    """Bars per label (members by plan, one series per tier), stacked by default."""
    chart = _base("StackedBar" if stacked else "Bar", title, labels, width, height)
    for name, values in series.items():
        chart.add(name, list(values))
    return _render(chart)
