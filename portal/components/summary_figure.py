"""The usage analytics chart: one bar per group (pure: plain values in, a Plotly figure out).

Money stays integer: bars are drawn in micros and the axis is labelled with dollars picked at round
integer steps, so no float ever holds an amount.
"""

from __future__ import annotations

import plotly.graph_objects as go

from .format import duration, number, usd, usd_cents

MS_PER_MINUTE, MS_PER_HOUR = 60_000, 3_600_000
INPUT_COLOR, OUTPUT_COLOR, COMPUTE_COLOR, COST_COLOR = "#3e63dd", "#8da4ef", "#12a594", "#e54666"
MUTED = "#8b8d98"  # readable on light and dark backgrounds alike
GRID = "rgba(139,141,152,0.2)"


def _money_ticks(top_micros: int, target: int = 5) -> tuple[list[int], list[str]]:
    """Round integer steps of micros (1, 2 or 5 x 10^k) from 0 past the top, labelled as dollars."""
    step, power = 1, 1
    while step * target < top_micros:
        for mantissa in (1, 2, 5):
            step = mantissa * power
            if step * target >= top_micros:
                break
        power *= 10
    values = list(range(0, max(top_micros, 1) + step, step))
    labels = [usd_cents(v) if step >= 10_000 else usd(v) for v in values]
    return values, labels


def build_summary_figure(labels: list[str], compute_ms: list[int], input_tokens: list[int],
                         output_tokens: list[int], cost_micros: list[int], *, metric: str,
                         by_day: bool) -> go.Figure:
    """Bars per label of compute, tokens (input and output stacked) or cost; hover shows exact values."""
    if metric == "tokens":
        traces = [go.Bar(x=labels, y=input_tokens, name="input", marker_color=INPUT_COLOR,
                         hovertext=[f"{k}<br>{number(v)} input tokens" for k, v in zip(labels, input_tokens)],
                         hoverinfo="text"),
                  go.Bar(x=labels, y=output_tokens, name="output", marker_color=OUTPUT_COLOR,
                         hovertext=[f"{k}<br>{number(v)} output tokens" for k, v in zip(labels, output_tokens)],
                         hoverinfo="text")]
        yaxis = {"title": {"text": "tokens"}}
    elif metric == "cost":
        traces = [go.Bar(x=labels, y=cost_micros, name="cost", marker_color=COST_COLOR,
                         hovertext=[f"{k}<br>{usd(v)} charged" for k, v in zip(labels, cost_micros)],
                         hoverinfo="text")]
        values, texts = _money_ticks(max(cost_micros, default=0))
        yaxis = {"title": {"text": "USD"}, "tickmode": "array", "tickvals": values, "ticktext": texts}
    else:
        hours = max(compute_ms, default=0) >= 2 * MS_PER_HOUR
        scale, unit = (MS_PER_HOUR, "hours") if hours else (MS_PER_MINUTE, "minutes")
        traces = [go.Bar(x=labels, y=[ms / scale for ms in compute_ms], name="compute", marker_color=COMPUTE_COLOR,
                         hovertext=[f"{k}<br>{duration(ms)} of compute" for k, ms in zip(labels, compute_ms)],
                         hoverinfo="text")]
        yaxis = {"title": {"text": unit}}
    figure = go.Figure(traces)
    figure.update_layout(
        barmode="stack", bargap=0.25, height=300, margin={"l": 56, "r": 8, "t": 8, "b": 40},
        showlegend=metric == "tokens", legend={"orientation": "h", "y": 1.12, "x": 0},
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", font={"color": MUTED},
        xaxis={"type": "date" if by_day else "category", "tickformat": "%b %d" if by_day else None,
               "fixedrange": True, "gridcolor": GRID, "automargin": True},
        yaxis={**yaxis, "rangemode": "tozero", "fixedrange": True, "gridcolor": GRID, "automargin": True},
    )
    return figure
