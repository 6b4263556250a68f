"""The census report's rows and columns, shared by every format (CSV, JSON, HTML).

One row per province, city, city × centre and city × centre × GPU model (`level`), province first.
Units are plain so a spreadsheet can add them up: cores, bytes, devices, ratios in 0..1, seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .snapshots import Row, Snapshot
from .trends import parse_time

RESOURCE_NAMES = {
    "cpu": ("CPU", "CPU", "cores"),
    "memory": ("内存", "memory", "bytes"),
    "gpu": ("GPU", "GPU", "devices"),
}


@dataclass(frozen=True)
class Column:
    id: str
    zh: str
    en: str
    unit: str = ""


def _columns() -> list[Column]:
    cols = [
        Column("level", "层级", "level", "province|city|centre|gpu"),
        Column("city_code", "行政区划代码", "division code"),
        Column("city", "城市数据云", "CityDataCloud"),
        Column("city_zh", "城市", "city (zh)"),
        Column("city_en", "城市(英文)", "city (en)"),
        Column("centre", "数据中心", "centre"),
        Column("gpu_model", "GPU型号", "GPU model"),
        Column("data_time", "数据采集时间", "data collected at", "RFC 3339"),
        Column("data_age_seconds", "数据时长", "data age", "seconds"),
        Column("nodes_total", "节点总数", "nodes total"),
        Column("nodes_ready", "就绪节点", "nodes ready"),
        Column("nodes_schedulable", "可调度节点", "nodes schedulable"),
        Column("nodes_cordoned", "封锁节点", "nodes cordoned"),
        Column("pods_live", "运行中Pod", "live pods"),
    ]
    for res, (zh, en, unit) in RESOURCE_NAMES.items():
        cols += [
            Column(f"{res}_capacity", f"{zh}容量", f"{en} capacity", unit),
            Column(f"{res}_allocatable", f"{zh}可分配", f"{en} allocatable", unit),
            Column(f"{res}_schedulable", f"{zh}可调度", f"{en} schedulable", unit),
            Column(f"{res}_requested", f"{zh}已申请", f"{en} requested", unit),
            Column(f"{res}_requested_ratio", f"{zh}申请率", f"{en} requested / allocatable", "ratio"),
            Column(f"{res}_used_avg", f"{zh}平均使用", f"{en} used (average)", unit),
            Column(f"{res}_used_p95", f"{zh}使用P95", f"{en} used (p95)", unit),
            Column(f"{res}_used_ratio", f"{zh}使用率", f"{en} used / allocatable", "ratio"),
            Column(f"{res}_used_p95_ratio", f"{zh}使用率P95", f"{en} used p95 / allocatable", "ratio"),
            Column(f"{res}_committed", f"{zh}数据区配额", f"{en} committed zone quota", unit),
            Column(f"{res}_overcommit_ratio", f"{zh}超配比", f"{en} committed / allocatable", "ratio"),
            Column(f"{res}_free", f"{zh}空闲", f"{en} free on schedulable nodes", unit),
            Column(f"{res}_largest_free", f"{zh}单节点最大空闲", f"{en} largest request that fits", unit),
            Column(f"{res}_fragmentation", f"{zh}碎片率", f"{en} fragmentation", "ratio"),
            Column(f"{res}_days_until_exhaustion", f"{zh}耗尽天数", f"{en} days until exhaustion", "days"),
            Column(f"{res}_exhaustion_note", f"{zh}预测说明", f"{en} forecast note"),
            Column(f"{res}_growth_per_day", f"{zh}日增长", f"{en} requested growth per day", unit),
        ]
    cols += [
        Column("storage_bytes", "对象存储用量", "object storage used", "bytes"),
        Column("storage_objects", "对象数", "objects"),
        Column("storage_buckets", "存储桶数", "buckets"),
        Column("delta_nodes_total", "节点变化", "nodes change since previous"),
        Column("delta_cpu_allocatable", "CPU可分配变化", "CPU allocatable change", "cores"),
        Column("delta_cpu_requested", "CPU申请变化", "CPU requested change", "cores"),
        Column("delta_memory_requested", "内存申请变化", "memory requested change", "bytes"),
        Column("delta_gpu_requested", "GPU申请变化", "GPU requested change", "devices"),
        Column("carried", "沿用上次数据", "carried from previous snapshot"),
        Column("note", "说明", "note"),
    ]
    return cols


COLUMNS: tuple[Column, ...] = tuple(_columns())


def with_age(snapshot: Snapshot) -> list[Row]:
    """The snapshot's rows with `data_age_seconds` as of the snapshot's time."""
    taken = parse_time(snapshot.taken_at)
    out = []
    for r in snapshot.rows:
        row = dict(r)
        if row.get("data_time"):
            row["data_age_seconds"] = max(
                0, round((taken - parse_time(str(row["data_time"]))).total_seconds())
            )
        out.append(row)
    return out


def trend_series(history: Sequence[Snapshot]) -> list[dict[str, Any]]:
    """Per snapshot, the province and city figures the trend charts draw (oldest first)."""
    out = []
    for s in history:
        for r in s.rows:
            if r["level"] in ("province", "city") and not r.get("carried"):
                out.append(
                    {
                        "takenAt": s.taken_at,
                        "level": r["level"],
                        "city": r.get("city_en") or "",
                        "city_code": r.get("city_code") or "",
                        **{
                            f"{res}_{k}": r.get(f"{res}_{k}")
                            for res in RESOURCE_NAMES
                            for k in ("allocatable", "requested", "used_avg")
                        },
                    }
                )
    return out
