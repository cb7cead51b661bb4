"""`batchd serve` and `batchd worker`: their flags come from the settings, bad ones stop with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from batchd import config
from batchd.cli import main


@pytest.mark.parametrize("command", list(config.Command))
def test_each_command_has_the_flags_of_its_settings(command: config.Command) -> None:
    result = CliRunner().invoke(main, [command.value, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    flat = " ".join(result.output.split())  # a long help text wraps anywhere, even inside "[env …"
    for setting in config.SETTINGS:
        has_flag = any(line.strip().startswith(setting.option + " ") for line in lines)
        assert has_flag is (command in setting.commands), (command, setting.name)
        if has_flag:
            assert f"[env {setting.env}; default {setting.default_text}" in flat
        for alias in setting.aliases:  # still read, never shown
            assert config.option_name(alias) + " " not in result.output.replace("formerly ", "")


def test_a_bad_setting_stops_with_exit_2(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    args = ["serve", "--data-dir", str(tmp_path), "--fleet-concurrency", "-1"]
    with caplog.at_level("WARNING", logger="batchd.config"):
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.stderr == "batchd: fleet_max_running: must be 0 (no limit) or more\n"
    assert caplog.messages == [
        "--fleet-concurrency is deprecated: use --fleet-max-running (the same setting)"
    ]


@pytest.mark.parametrize("command", list(config.Command))
def test_an_unknown_name_in_the_config_file_stops_with_exit_2(
    command: config.Command, tmp_path: Path
) -> None:
    toml = tmp_path / "batchd.toml"
    toml.write_text('[batchd]\nmax_request = 2\n\n[[route]]\nmodel = "claude-*"\n')
    result = CliRunner().invoke(main, [command.value, "--config", str(toml)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"batchd: config file {toml}: unknown table [[route]] (did you mean [[routes]]?); "
        "unknown setting 'batchd.max_request' (did you mean 'batchd.max_requests'?)\n"
    )
