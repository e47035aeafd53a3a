"""Unit tests see none of the developer's settings: no setting variable from the environment
and no `.env` file, so `Settings()` is the defaults plus what a test passes or sets itself."""

from __future__ import annotations

import pytest

from settings import Settings

SETTING_VARIABLES = [name.upper() for name in Settings.model_fields]


@pytest.fixture(autouse=True)
def no_developer_settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in SETTING_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setitem(Settings.model_config, "env_file", None)
    return monkeypatch
