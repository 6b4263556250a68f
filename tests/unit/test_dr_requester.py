"""`datacloud dr` names who asked even where the user has no login name (a container as a bare uid)."""

from __future__ import annotations

import os
import pwd

import pytest

from datacloud.commands.dr import requester


def test_a_user_without_a_passwd_entry_is_named_by_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)

    def missing(uid: int) -> pwd.struct_passwd:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", missing)
    assert requester() == f"uid-{os.getuid()}"


def test_the_login_name_is_used_when_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGNAME", "运维-sre")
    assert requester() == "运维-sre"
