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
    caplog.set_level("INFO", logger="server.auth")
    token = load_token(None, tmp_path / "var")
    path = tmp_path / "var" / TOKEN_FILE
    assert len(token) >= 24
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in caplog.text  # the log names the file, never the secret
    assert str(path) in caplog.text
    assert f"cat {path}" in caplog.text  # how to read it, in the words the README uses
    caplog.clear()
    assert load_token(None, tmp_path / "var") == token
    assert token not in caplog.text
    assert f"cat {path}" in caplog.text  # every start says where it is, not only the first


def test_a_configured_token_is_never_logged_but_its_source_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="server.auth")
    load_token("from-flag-0123456789", tmp_path)
    assert "from-flag" not in caplog.text
    assert f"--admin-token / {ENV_VAR}" in caplog.text


def test_the_sign_in_dialog_tells_the_same_story_as_the_log() -> None:
    """The dialog once said the server prints the token: it never does; it names the file."""
    page = (Path(__file__).parent.parent / "web" / "admin.html").read_text()
    dialog = page[page.index('<dialog id="token-dialog"') : page.index("</dialog>")]
    assert "cat var/admin-token" in dialog and f"<code>{ENV_VAR}</code>" in dialog
    assert "<code>--admin-token</code>" in dialog
    assert "prints it" not in dialog and "never printed" in dialog


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
