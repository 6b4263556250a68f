"""The census report as one self-contained, bilingual HTML page: plotly charts (plotly.js inlined once,
so the page works offline) above the tables planners read."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go  # type: ignore[import-untyped]
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from .report_rows import RESOURCE_NAMES, trend_series, with_age
from .snapshots import Row, Snapshot

GIB = 2**30
UNITS = {"cpu": ("核", "cores", 1.0), "memory": ("GiB", "GiB", float(GIB)), "gpu": ("卡", "devices", 1.0)}
CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",system-ui,sans-serif;margin:24px;color:#1f2933}
h1{font-size:24px;margin-bottom:4px} h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccd}
table{border-collapse:collapse;font-size:12px;margin:8px 0} th,td{border:1px solid #d5d9e0;padding:3px 6px}
th{background:#eef1f6;text-align:left} td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.province td{font-weight:bold;background:#f8f3e6} tr.city td{background:#f6f8fb}
.meta{color:#52606d;font-size:13px} .warn{color:#a61b1b}
"""


def _fmt(value: Any, res: str = "", ratio: bool = False) -> str:
    if value is None or value == "":
        return "—"
    if ratio:
        return f"{float(value):.0%}"
    if res == "memory":
        return f"{float(value) / GIB:,.0f} GiB"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def _bytes(value: Any) -> str:
    if not isinstance(value, int | float):
        return "—"
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size:
            return f"{value / size:,.1f} {unit}"
    return f"{value:,.0f} B"


def _table(
    headers: Sequence[tuple[str, str]], rows: Sequence[tuple[str, Sequence[str]]], table_id: str
) -> str:
    head = "".join(f"<th>{html.escape(zh)}<br>{html.escape(en)}</th>" for zh, en in headers)
    body = "".join(
        f'<tr class="{cls}">'
        + "".join(
            f'<td class="n">{c}</td>' if c[:1].isdigit() or c[:1] in "-—" else f"<td>{c}</td>" for c in cells
        )
        + "</tr>"
        for cls, cells in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _label(r: Row) -> str:
    return f"{r.get('city_zh') or ''} {r.get('city_en') or ''}".strip()


def _scale(r: Row, res: str, kind: str) -> float | None:
    value = r.get(f"{res}_{kind}")
    return float(value) / UNITS[res][2] if isinstance(value, int | float) else None


def capacity_chart(cities: Sequence[Row]) -> go.Figure:
    titles = [f"{zh} {en} ({UNITS[res][0]})" for res, (zh, en, _) in RESOURCE_NAMES.items()]
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles)
    names = [_label(r) for r in cities]
    series = (
        ("allocatable", "可分配 allocatable", "#4c78a8"),
        ("requested", "已申请 requested", "#f58518"),
        ("used_avg", "使用 used (avg)", "#54a24b"),
    )
    for col, res in enumerate(RESOURCE_NAMES, start=1):
        for kind, name, colour in series:
            fig.add_trace(
                go.Bar(
                    x=names,
                    y=[_scale(r, res, kind) for r in cities],
                    name=name,
                    marker_color=colour,
                    legendgroup=kind,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    fig.update_layout(barmode="group", height=420, title="容量、申请与使用 Capacity vs requested vs used")
    return fig


def trend_chart(history: Sequence[Snapshot]) -> go.Figure:
    points = trend_series(history)
    titles = [f"{zh}申请率 {en} requested / allocatable" for zh, en, _ in RESOURCE_NAMES.values()]
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles)
    lines: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        lines.setdefault("全省 Province" if p["level"] == "province" else p["city"], []).append(p)
    for col, res in enumerate(RESOURCE_NAMES, start=1):
        for name, pts in lines.items():
            ys = [
                p[f"{res}_requested"] / p[f"{res}_allocatable"]
                if p.get(f"{res}_allocatable") and p.get(f"{res}_requested") is not None
                else None
                for p in pts
            ]
            fig.add_trace(
                go.Scatter(
                    x=[p["takenAt"] for p in pts],
                    y=ys,
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
        fig.update_yaxes(tickformat=".0%", row=1, col=col)
    fig.update_layout(height=420, title=f"趋势 Trends over {len(history)} retained snapshot(s)")
    return fig


def gpu_chart(gpu_rows: Sequence[Row]) -> go.Figure:
    by_model: dict[str, dict[str, list[float]]] = {}
    cities = sorted({_label(r) for r in gpu_rows})
    for r in gpu_rows:
        m = by_model.setdefault(str(r.get("gpu_model")), {c: [0.0, 0.0] for c in cities})
        m[_label(r)][0] += float(r.get("gpu_allocatable") or 0)
        m[_label(r)][1] += float(r.get("gpu_requested") or 0)
    fig = go.Figure()
    for model, per_city in sorted(by_model.items()):
        fig.add_trace(
            go.Bar(
                x=cities,
                y=[per_city[c][0] for c in cities],
                name=f"{model} 可分配 allocatable",
                offsetgroup="alloc",
            )
        )
        fig.add_trace(
            go.Bar(
                x=cities,
                y=[per_city[c][1] for c in cities],
                name=f"{model} 已申请 requested",
                offsetgroup="req",
            )
        )
    fig.update_layout(
        barmode="stack", height=420, title="按型号的GPU GPUs by model", yaxis_title="卡 devices"
    )
    return fig


HEAT_COLUMNS = (
    ("cpu_requested_ratio", "CPU申请 CPU requested"),
    ("memory_requested_ratio", "内存申请 memory requested"),
    ("gpu_requested_ratio", "GPU申请 GPU requested"),
    ("cpu_used_ratio", "CPU使用 CPU used"),
    ("memory_used_ratio", "内存使用 memory used"),
    ("gpu_used_ratio", "GPU使用 GPU used"),
    ("cpu_overcommit_ratio", "CPU配额 CPU committed"),
)


def heatmap(cities: Sequence[Row]) -> go.Figure:
    z = [
        [(float(r[c]) * 100 if isinstance(r.get(c), int | float) else None) for c, _ in HEAT_COLUMNS]
        for r in cities
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[name for _, name in HEAT_COLUMNS],
            y=[_label(r) for r in cities],
            colorscale="YlOrRd",
            zmin=0,
            zmax=100,
            colorbar={"title": "%"},
            texttemplate="%{z:.0f}",
            hoverongaps=False,
        )
    )
    fig.update_layout(
        height=max(320, 160 + 36 * len(cities)), title="利用率热力图 Utilisation heat map (% of allocatable)"
    )
    return fig


def _main_table(rows: Sequence[Row]) -> str:
    headers = [
        ("层级", "level"),
        ("城市", "city"),
        ("数据中心", "centre"),
        ("节点 总/就绪/可调度", "nodes total/ready/sched."),
        ("CPU 可分配", "CPU alloc."),
        ("CPU 已申请", "CPU req."),
        ("CPU 申请率", "CPU req. %"),
        ("CPU 使用率", "CPU used %"),
        ("内存 可分配", "mem alloc."),
        ("内存 申请率", "mem req. %"),
        ("GPU 可分配/已申请", "GPU alloc./req."),
        ("单节点最大空闲CPU", "largest CPU fit"),
        ("CPU 碎片率", "CPU fragm."),
        ("CPU 配额超配", "CPU committed %"),
        ("存储", "storage"),
        ("CPU 申请变化", "CPU req. change"),
        ("数据时长", "data age"),
        ("说明", "note"),
    ]
    body = []
    for r in rows:
        if r["level"] == "gpu":
            continue
        nodes = f"{r.get('nodes_total', '—')}/{r.get('nodes_ready', '—')}/{r.get('nodes_schedulable', '—')}"
        age = r.get("data_age_seconds")
        body.append(
            (
                r["level"],
                [
                    html.escape(r["level"]),
                    html.escape(_label(r)),
                    html.escape(str(r.get("centre") or "")),
                    nodes,
                    _fmt(r.get("cpu_allocatable")),
                    _fmt(r.get("cpu_requested")),
                    _fmt(r.get("cpu_requested_ratio"), ratio=True),
                    _fmt(r.get("cpu_used_ratio"), ratio=True),
                    _fmt(r.get("memory_allocatable"), "memory"),
                    _fmt(r.get("memory_requested_ratio"), ratio=True),
                    f"{_fmt(r.get('gpu_allocatable'))}/{_fmt(r.get('gpu_requested'))}",
                    _fmt(r.get("cpu_largest_free")),
                    _fmt(r.get("cpu_fragmentation"), ratio=True),
                    _fmt(r.get("cpu_overcommit_ratio"), ratio=True),
                    _bytes(r.get("storage_bytes")),
                    _fmt(r.get("delta_cpu_requested")),
                    f"{age}s" if age is not None else "—",
                    html.escape(str(r.get("note") or "")),
                ],
            )
        )
    return _table(headers, body, "census-rows")


def _gpu_table(rows: Sequence[Row]) -> str:
    headers = [
        ("城市", "city"),
        ("数据中心", "centre"),
        ("GPU型号", "GPU model"),
        ("节点", "nodes"),
        ("可分配", "allocatable"),
        ("已申请", "requested"),
        ("申请率", "requested %"),
        ("单节点最大空闲", "largest fit"),
    ]
    body = [
        (
            "gpu",
            [
                html.escape(_label(r)),
                html.escape(str(r.get("centre"))),
                html.escape(str(r.get("gpu_model"))),
                _fmt(r.get("nodes_total")),
                _fmt(r.get("gpu_allocatable")),
                _fmt(r.get("gpu_requested")),
                _fmt(r.get("gpu_requested_ratio"), ratio=True),
                _fmt(r.get("gpu_largest_free")),
            ],
        )
        for r in rows
        if r["level"] == "gpu"
    ]
    return _table(headers, body, "census-gpus")


def _exhaustion_table(rows: Sequence[Row]) -> str:
    headers = [("城市", "city")] + [
        (f"{zh}耗尽天数", f"{en} days until exhaustion") for zh, en, _ in RESOURCE_NAMES.values()
    ]
    body = []
    for r in rows:
        if r["level"] not in ("province", "city"):
            continue
        cells = [html.escape(_label(r))]
        for res in RESOURCE_NAMES:
            days = r.get(f"{res}_days_until_exhaustion")
            cells.append(
                f"{days:,.4g}"
                if isinstance(days, int | float)
                else html.escape(str(r.get(f"{res}_exhaustion_note") or "—"))
            )
        body.append((r["level"], cells))
    return _table(headers, body, "census-exhaustion")


def to_html(snapshot: Snapshot, history: Sequence[Snapshot]) -> str:
    rows = with_age(snapshot)
    cities = [r for r in rows if r["level"] == "city"]
    province = next((r for r in rows if r["level"] == "province"), {})
    figures = [
        capacity_chart(cities),
        trend_chart(history or [snapshot]),
        gpu_chart([r for r in rows if r["level"] == "gpu"]),
        heatmap(cities),
    ]
    # plotly.js goes inline once, with the first chart; the others reuse it
    config = {"displaylogo": False}
    charts = "".join(
        f'<div class="chart">{f.to_html(full_html=False, include_plotlyjs=(i == 0), config=config)}</div>'
        for i, f in enumerate(figures)
    )
    p = province
    totals = (
        f"节点 nodes {_fmt(p.get('nodes_total'))} (可调度 schedulable {_fmt(p.get('nodes_schedulable'))}) · "
        f"CPU {_fmt(p.get('cpu_allocatable'))} 核 cores, "
        f"申请 requested {_fmt(p.get('cpu_requested_ratio'), ratio=True)} · "
        f"内存 memory {_fmt(p.get('memory_allocatable'), 'memory')} · GPU {_fmt(p.get('gpu_allocatable'))} · "
        f"存储 storage {_bytes(p.get('storage_bytes'))}"
    )
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in snapshot.problems) or "<li>无 none</li>"
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>算力资源普查报告 Compute census report — {html.escape(snapshot.census)}</title>
<style>{CSS}</style></head><body>
<h1>算力资源普查报告 <small>Compute census report</small></h1>
<p class="meta">普查 census <b>{html.escape(snapshot.census)}</b> ·
时间 taken at {html.escape(snapshot.taken_at)} ·
用时 duration {snapshot.duration_s:.1f}s · 保留快照 snapshots {len(history)}</p>
<h2>全省合计 Province totals</h2><p id="province-totals">{totals}</p>
<h2>图表 Charts</h2>{charts}
<h2>城市与数据中心 Cities and centres</h2>{_main_table(rows)}
<h2>GPU 按型号 GPUs by model</h2>{_gpu_table(rows)}
<h2>资源耗尽预测 Days until exhaustion</h2>{_exhaustion_table(rows)}
<h2>问题 Problems</h2><ul class="warn">{problems}</ul>
</body></html>
"""
