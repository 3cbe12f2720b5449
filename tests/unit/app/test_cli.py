"""``hub serve``'s command line without a process: flags, config keys, what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import config as hub_config
from hub.app import cli
from tests.helpers.processes import write_config


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[server]\nprot = 1\n", "`prot` - at `$.server`"),
        ('[server]\nport = "x"\n', "$.server.port"),
        ("[server]\nport = 1.5\n", "$.server.port"),
        ("[nope]\nx = 1\n", "nope"),
        ('[server]\nlog_level = "loud"\n', "$.server.log_level"),
        ("[api]\nbeta_api = 3\n", "$.api.beta_api"),
        ('[admin]\nips = "127.0.0.1"\n', "$.admin.ips"),
        ("server = 1\n", "$.server"),
        ("[server\n", "cannot read config"),
    ],
    ids=[
        "unknown-key",
        "wrong-type",
        "float-port",
        "unknown-section",
        "bad-choice",
        "bad-bool",
        "bad-list",
        "section-not-table",
        "bad-toml",
    ],
)
def test_bad_config_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, fragment: str
) -> None:
    config = write_config(tmp_path, text)
    assert cli.main(["serve", "--config", config]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("hub: ")
    assert fragment in err


def test_missing_config_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--config", str(tmp_path / "absent.toml")]) == 2
    assert "absent.toml" in capsys.readouterr().err


def test_bad_flag_value_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--log-level", "loud"])
    assert info.value.code == 2
    assert "--log-level" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--port", "eighty"])
    assert info.value.code == 2


def test_help_lists_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--host", "--port", "--config", "--log-level"):
        assert flag in text


def test_every_flag_has_a_config_key(tmp_path: Path) -> None:
    """A flag and its TOML key set the same setting."""
    flags = cli._overrides(
        cli._parser().parse_args(
            ["serve", "--host", "127.0.0.2", "--port", "0", "--log-level", "debug"]
        )
    )
    from_flags = hub_config.load(None, flags)
    path = write_config(tmp_path, '[server]\nhost = "127.0.0.2"\nport = 0\nlog_level = "debug"\n')
    from_file = hub_config.load(path)
    assert from_flags == from_file
    assert (from_file.server.host, from_file.server.port, from_file.server.log_level) == (
        "127.0.0.2",
        0,
        "debug",
    )


def test_out_of_range_default_version_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "[api]\ndefault_version = 5\n")
    assert cli.main(["serve", "--config", config]) == 2
    assert "default_version" in capsys.readouterr().err
