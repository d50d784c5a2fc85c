"""The admin token: configured, from the environment, or generated once and kept private."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from server.auth import ENV_VAR, TOKEN_FILE, load_token, token_matches
from server.errors import ConfigError


def test_configured_token_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "from-env-0123456789")
    assert load_token("from-flag-0123456789", tmp_path) == "from-flag-0123456789"
    assert load_token(None, tmp_path) == "from-env-0123456789"
    assert not (tmp_path / TOKEN_FILE).exists()


def test_generated_token_is_stored_0600_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    token = load_token(None, tmp_path / "var")
    path = tmp_path / "var" / TOKEN_FILE
    assert len(token) >= 24
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in caplog.text  # the log names the file, never the secret
    assert str(path) in caplog.text
    caplog.clear()
    assert load_token(None, tmp_path / "var") == token
    assert token not in caplog.text


def test_only_the_exact_bearer_token_matches() -> None:
    assert token_matches("Bearer s3cret", "s3cret")
    assert token_matches("bearer s3cret", "s3cret")
    assert not token_matches(None, "s3cret")
    assert not token_matches("Bearer s3cre", "s3cret")
    assert not token_matches("Basic s3cret", "s3cret")
    assert not token_matches("Bearer ", "s3cret")


@pytest.mark.parametrize("short", ["s3cret", "fifteen-chars!!"])
def test_short_tokens_are_refused(
    tmp_path: Path, short: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(ConfigError, match="16 characters"):
        load_token(short, tmp_path)
    (tmp_path / TOKEN_FILE).write_text(short + "\n")
    with pytest.raises(ConfigError, match=TOKEN_FILE):
        load_token(None, tmp_path)
