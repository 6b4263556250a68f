"""The operator's settings: defaults, each DATACLOUD_* variable, refusals that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from datacloud import settings
from datacloud.settings import Settings, SettingsError


def test_defaults_when_nothing_is_set() -> None:
    s = Settings.from_env({})
    assert (s.namespace, s.image, s.priority, s.workers, s.zone_workers) == (
        "datacloud-system", settings.DEFAULT_IMAGE, None, 4, 12
    )  # fmt: skip
    assert (s.log_level, s.events_port, s.events_address) == ("INFO", None, "127.0.0.1")


def test_each_variable_is_read() -> None:
    s = Settings.from_env(
        {
            "DATACLOUD_NAMESPACE": "ops",
            "DATACLOUD_IMAGE": "registry.local/datacloud:1",
            "DATACLOUD_PRIORITY": "7",
            "DATACLOUD_WORKERS": "4",
            "DATACLOUD_ZONE_WORKERS": "2",
            "DATACLOUD_REPLICA_WORKERS": "3",
            "DATACLOUD_CENTRE_WORKERS": "5",
            "DATACLOUD_CITY_WORKERS": "6",
            "DATACLOUD_CENSUS_WORKERS": "1",
            "DATACLOUD_FOLLOW_WORKERS": "9",
            "DATACLOUD_SCAN_WORKERS": "7",
            "DATACLOUD_LOG_LEVEL": "debug",
            "DATACLOUD_EVENTS_PORT": "8088",
            "DATACLOUD_EVENTS_ADDRESS": "10.0.0.5",
            "DATACLOUD_TOOLS_BIN": "/opt/tools",
            "DATACLOUD_TOOLS_CACHE": "/var/cache/tools",
        }
    )
    assert s == Settings(
        "ops",
        "registry.local/datacloud:1",
        7,
        4,
        2,
        3,
        5,
        6,
        1,
        9,
        7,
        "DEBUG",
        8088,
        "10.0.0.5",
        Path("/opt/tools"),
        Path("/var/cache/tools"),
    )


def test_the_tools_bin_is_in_the_tools_cache_unless_set() -> None:
    assert Settings.from_env({"DATACLOUD_TOOLS_CACHE": "/c"}).tools_bin == Path("/c/bin")
    assert Settings.from_env({}).tools_cache == Path.home() / ".cache/datacloud-tools"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("DATACLOUD_WORKERS", "many", "not an integer"), ("DATACLOUD_WORKERS", "0", "at least 1"),
     ("DATACLOUD_EVENTS_PORT", "70000", "between 0 and 65535"),
     ("DATACLOUD_PRIORITY", "1.5", "not an integer")],
)  # fmt: skip
def test_a_malformed_value_is_refused_with_its_name(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"{name}.*{message}"):
        Settings.from_env({name: value})


def test_read_when_asked_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATACLOUD_NAMESPACE", "first")
    assert settings.current().namespace == "first"
    monkeypatch.setenv("DATACLOUD_NAMESPACE", "second")
    assert settings.current().namespace == "second"


def test_the_zone_pool_is_sized_when_the_runtime_starts_not_at_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datacloud.reconcile import zone_runtime  # imported (perhaps long) before the variable is set

    monkeypatch.setattr(zone_runtime, "_pool", None)
    monkeypatch.setenv("DATACLOUD_ZONE_WORKERS", "3")
    pool = zone_runtime.pool()
    try:
        assert pool._max_workers == 3
        assert zone_runtime.pool() is pool  # one pool for the operator's life
    finally:
        pool.shutdown()
