"""A small bar chart of compute per day (pure: plain values in, a Plotly figure out)."""

from __future__ import annotations

import plotly.graph_objects as go

from .format import duration, usd

MS_PER_MINUTE = 60_000


def build_compute_figure(days: list[str], compute_ms: list[int], cost_micros: list[int],
                         color: str = "#3e63dd") -> go.Figure:
    """Bars of minutes per day; hovering a bar shows the exact time and what it was charged."""
    minutes = [ms / MS_PER_MINUTE for ms in compute_ms]  # display only; the hover text is exact
    hover = [f"{day}<br>{duration(ms)} of compute<br>{usd(cost)} charged"
             for day, ms, cost in zip(days, compute_ms, cost_micros)]
    figure = go.Figure(go.Bar(x=days, y=minutes, marker_color=color, hovertext=hover, hoverinfo="text",
                              name="compute"))
    figure.update_layout(
        margin={"l": 48, "r": 8, "t": 8, "b": 32}, height=240, bargap=0.25, showlegend=False,
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        xaxis={"type": "date", "tickformat": "%b %d", "fixedrange": True},
        yaxis={"title": {"text": "minutes"}, "rangemode": "tozero", "fixedrange": True},
    )
    return figure
