"""The admin token: configured, from the environment, or generated once and kept private."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from server.jobs.auth import ENV_VAR, TOKEN_FILE, load_token, token_matches


def test_configured_token_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "from-env")
    assert load_token("from-flag", tmp_path) == "from-flag"
    assert load_token(None, tmp_path) == "from-env"
    assert not (tmp_path / TOKEN_FILE).exists()


def test_generated_token_is_stored_0600_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    token = load_token(None, tmp_path / "var")
    path = tmp_path / "var" / TOKEN_FILE
    assert len(token) >= 24
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token in caplog.text  # logged once so the operator can find it
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
