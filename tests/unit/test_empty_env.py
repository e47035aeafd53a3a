"""An empty environment value behaves exactly like an unset one.

Container images declare variables that cannot be unset later (an image's `ENV NAME=` stays
in every container, and Kubernetes cannot remove it), so "set but empty" must mean "default".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bg_remover_client import cli
from settings import Settings
from tests.unit.conftest import SETTING_VARIABLES as FIELD_VARIABLES


@pytest.fixture
def clean_env(no_developer_settings: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No setting in the environment; `.env` read as the service reads it, from the working
    directory, an empty one here."""
    no_developer_settings.chdir(tmp_path)
    no_developer_settings.setitem(Settings.model_config, "env_file", ".env")
    return no_developer_settings


def test_every_setting_empty_in_the_environment_gives_the_defaults(
    clean_env: pytest.MonkeyPatch,
) -> None:
    defaults = Settings()
    for variable in FIELD_VARIABLES:
        clean_env.setenv(variable, "")
    settings = Settings()
    assert settings == defaults
    # The two that used to go wrong silently rather than fail validation.
    assert settings.log_file is None
    assert settings.metrics_allow and settings.metrics_allow == defaults.metrics_allow


def test_every_setting_empty_in_a_dotenv_file_gives_the_defaults(
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    defaults = Settings()
    quotes = ("", "''", '""')
    (tmp_path / ".env").write_text(
        "".join(f"{variable}={quotes[n % 3]}\n" for n, variable in enumerate(FIELD_VARIABLES))
    )
    assert Settings() == defaults


def test_a_non_empty_value_still_counts(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("METRICS_ALLOW", "10.1.0.0/16")
    clean_env.setenv("LOG_FILE", "")
    settings = Settings()
    assert [str(net) for net in settings.metrics_allow] == ["10.1.0.0/16"]
    assert settings.log_file is None


def test_cli_treats_empty_url_and_key_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cli.URL_ENV, "")
    monkeypatch.setenv(cli.KEY_ENV, "")
    args = cli.build_parser().parse_args(["photo.jpg"])
    assert args.url == cli.DEFAULT_URL
    assert args.api_key is None
