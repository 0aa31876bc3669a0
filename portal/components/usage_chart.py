"""The usage chart: a pure figure builder over the dashboard's daily series, and its frame.

Money and compute stay integers up to here; the bar heights are floats only because Plotly draws floats.
Every hover label is formatted from the exact integers, with units.
"""

from __future__ import annotations

import plotly.graph_objects as go
import reflex as rx

from billing_core.services.dashboard import OTHER, UsageSeries

from . import format as fmt

METRICS = (("compute", "Compute"), ("tokens", "Tokens & cost"))
RANGES = (("7", "7 days"), ("30", "30 days"), ("90", "90 days"))
# Radix-like hues that read on white and on near-black.
PALETTE = ("#3E63DD", "#12A594", "#E54666", "#F76B15", "#8E4EC6", "#FFC53D", "#0090FF", "#46A758", "#8D8D8D")
_MS_PER_HOUR, _MS_PER_MINUTE = 3_600_000, 60_000


def _day_labels(days) -> list[str]:
    return [d.isoformat() for d in days]


def _layout(fig: go.Figure, *, y_title: str, tick_prefix: str = "") -> go.Figure:
    fig.update_layout(
        # No template of its own: rx.plotly lays the light or dark one (by color mode) over the figure.
        template=go.layout.Template(),
        barmode="stack", hovermode="x unified", autosize=True, height=320, bargap=0.25,
        margin={"l": 48, "r": 8, "t": 8, "b": 8},
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        legend={"orientation": "h", "traceorder": "normal", "yanchor": "top", "y": -0.12, "xanchor": "left", "x": 0},
        # No zoom or pan: a drag (or a finger scrolling the page on a phone) must not rescale the chart.
        dragmode=False,
        xaxis={"type": "date", "tickformat": "%b %d", "hoverformat": "%a %b %d, %Y", "showgrid": False,
               "fixedrange": True},
        yaxis={"title": {"text": y_title}, "tickprefix": tick_prefix, "rangemode": "tozero", "fixedrange": True,
               "gridcolor": "rgba(128,128,128,0.2)"},
        font={"size": 12},
    )
    return fig


def _series_name(name: str) -> str:
    return "Other" if name == OTHER else name


def build_usage_figure(series: UsageSeries | None, *, metric: str = "compute", days: int = 30) -> go.Figure:
    """The last `days` days of `series`: compute per day stacked by project, or token cost per day by model."""
    fig = go.Figure()
    if series is None:
        return _layout(fig, y_title="")
    start = max(0, len(series.days) - days)
    x = _day_labels(series.days[start:])
    colors = iter(PALETTE * 4)
    if metric == "tokens":
        for m in series.models:
            cost, listed = m.cost_micros[start:], m.list_cost_micros[start:]
            tokens_in, tokens_out = m.input_tokens[start:], m.output_tokens[start:]
            if not any(tokens_in) and not any(tokens_out):
                continue
            text = [f"{fmt.usd(c)} · {fmt.number(i)} in / {fmt.number(o)} out tokens"
                    + (f" (list {fmt.usd(lc)}, own key)" if c == 0 and lc else "")
                    for c, lc, i, o in zip(cost, listed, tokens_in, tokens_out)]
            fig.add_trace(go.Bar(
                x=x, y=[c / fmt.MICROS_PER_USD for c in cost], name=_series_name(m.model), customdata=text,
                marker_color=next(colors), hovertemplate="%{customdata}"))
        return _layout(fig, y_title="Cost (USD)", tick_prefix="$")
    peak = max((sum(day) for day in zip(*(p.compute_ms[start:] for p in series.projects))), default=0)
    per, unit = (_MS_PER_HOUR, "hours") if peak >= 2 * _MS_PER_HOUR else (_MS_PER_MINUTE, "minutes")
    for p in series.projects:
        values = p.compute_ms[start:]
        if not any(values):
            continue
        fig.add_trace(go.Bar(
            x=x, y=[v / per for v in values], name=_series_name(p.name), marker_color=next(colors),
            customdata=[f"{fmt.duration(v)} ({fmt.number(v)} ms)" if v else "0 s" for v in values],
            hovertemplate="%{customdata}"))
    return _layout(fig, y_title=f"Compute ({unit})")


def has_usage(series: UsageSeries | None, days: int) -> bool:
    """Whether the last `days` days hold any compute or tokens (else the chart shows an empty state)."""
    if series is None:
        return False
    start = max(0, len(series.days) - days)
    return any(any(p.compute_ms[start:]) for p in series.projects) or any(
        any(m.input_tokens[start:]) or any(m.output_tokens[start:]) for m in series.models)


def usage_chart(figure: rx.Var, metric: rx.Var, range_days: rx.Var, on_metric, on_range,
                has_data: rx.Var, loaded: rx.Var, empty: rx.Component) -> rx.Component:
    """The chart card: metric and range switches, then the chart, a skeleton while loading, or `empty`."""
    controls = rx.hstack(
        rx.segmented_control.root(*[rx.segmented_control.item(label, value=value) for value, label in METRICS],
                                  value=metric, on_change=on_metric, size="1", id="chart-metric"),
        rx.segmented_control.root(*[rx.segmented_control.item(label, value=value) for value, label in RANGES],
                                  value=range_days, on_change=on_range, size="1", id="chart-range"),
        spacing="2", wrap="wrap")
    chart = rx.plotly(data=figure, use_resize_handler=True, width="100%", height="320px",
                      config={"displayModeBar": False, "responsive": True}, id="usage-chart")
    body = rx.cond(loaded, rx.cond(has_data, chart, rx.center(empty, height="320px", width="100%")),
                   rx.skeleton(height="320px", width="100%"))
    return rx.card(
        rx.vstack(
            rx.hstack(rx.heading("Usage", size="4"), rx.spacer(), controls, width="100%", align="center",
                      wrap="wrap", spacing="3"),
            rx.box(body, width="100%", min_height="320px"),
            spacing="3", width="100%"),
        width="100%", id="usage-card")
