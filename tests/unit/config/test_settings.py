from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from batchd import config, exceptions
from batchd.config.settings import Bounds


def test_defaults() -> None:
    s = config.load(environ={})
    assert (s.host, s.port, s.max_requests) == ("127.0.0.1", 8080, 100_000)
    assert s.max_batch_bytes == 256 * 1024 * 1024
    assert s.batch_lifetime == 86400 and s.retention == 29 * 86400
    assert s.store_url.startswith("sqlite:///") and s.store_url.endswith("batchd.db")


def test_flags_over_env_over_file(tmp_path: Path) -> None:
    toml = tmp_path / "batchd.toml"
    toml.write_text('port = 9000\nbatch_lifetime = "30s"\nretention = "1h"\nstrict = true\n')
    env = {"BATCHD_PORT": "9100", "BATCHD_RETENTION": "2h"}
    s = config.load({"port": "9200", "host": None}, config_file=str(toml), environ=env)
    assert s.port == 9200  # flag
    assert s.retention == 7200  # env over file
    assert s.batch_lifetime == 30 and s.strict is True  # file


def test_config_file_from_env_and_batchd_table(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[batchd]\nmax_batch_bytes = "1MB"\n[[routes]]\nmodel = "x"\n')
    s = config.load(environ={"BATCHD_CONFIG": str(toml)})
    assert s.max_batch_bytes == 1024 * 1024


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"BATCHD_PORT": "http"}, "BATCHD_PORT"),
        ({"BATCHD_BATCH_LIFETIME": "soon"}, "not a duration"),
        ({"BATCHD_STRICT": "maybe"}, "not a boolean"),
        ({"BATCHD_MAX_BATCH_BYTES": "lots"}, "not a size"),
        ({"BATCHD_PORT": "70000"}, "not a TCP port"),
        ({"BATCHD_CONCURRENCY": "0"}, "concurrency"),
        ({"BATCHD_HOST": "0.0.0.0"}, "api_keys"),
        ({"BATCHD_GGUF_CACHE_RAM": "-2"}, "gguf_cache_ram"),
    ],
)
def test_bad_settings_are_clear_errors(env: dict[str, str], needle: str) -> None:
    with pytest.raises(exceptions.ConfigError, match=needle):
        config.load(environ=env)


def test_unknown_file_key_and_missing_file(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("prot = 1\n")
    with pytest.raises(exceptions.ConfigError, match="unknown setting 'prot'"):
        config.load(config_file=str(toml), environ={})
    with pytest.raises(exceptions.ConfigError, match="config file"):
        config.load(config_file=str(tmp_path / "missing.toml"), environ={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prot = 1\n", "unknown setting 'prot' (did you mean 'port'?)"),
        ('[[route]]\nmodel = "x"\n', "unknown table [[route]] (did you mean [[routes]]?)"),
        (
            "[batchd]\nmax_request = 2\n",
            "unknown setting 'batchd.max_request' (did you mean 'batchd.max_requests'?)",
        ),
        ("[batchd.extra]\nport = 1\n", "unknown table [batchd.extra]"),
        ("[batchdd]\nport = 1\n", "unknown table [batchdd] (did you mean [batchd]?)"),
        ("zzz = 1\n", "unknown setting 'zzz'"),
    ],
)
def test_unknown_names_in_the_file_are_named_with_the_likely_one(
    tmp_path: Path, text: str, message: str
) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(text)
    with pytest.raises(exceptions.ConfigError) as raised:
        config.load(config_file=str(toml), environ={})
    assert raised.value.message == f"config file {toml}: {message}"


def test_every_unknown_name_is_reported_at_once(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('port = "oops"\nprot = 1\n[[route]]\nmodel = "x"\n')
    with pytest.raises(exceptions.ConfigError) as raised:
        config.load(config_file=str(toml), environ={})
    # The unknown names come first: a bad value of a known one waits until they are fixed.
    assert raised.value.message == (
        f"config file {toml}: unknown setting 'prot' (did you mean 'port'?); "
        "unknown table [[route]] (did you mean [[routes]]?)"
    )


def test_settings_at_the_top_level_and_under_batchd_combine(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('port = 9000\n[batchd]\nmax_requests = 7\n[[routes]]\nmodel = "x"\n')
    s = config.load(config_file=str(toml), environ={})
    assert (s.port, s.max_requests, [r.model for r in s.routes]) == (9000, 7, ["x"])
    toml.write_text("port = 9000\n[batchd]\nport = 9001\n")
    with pytest.raises(exceptions.ConfigError, match="'port' is given both at the top level and under"):
        config.load(config_file=str(toml), environ={})


def test_the_old_name_of_fleet_max_running_still_works_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("fleet_concurrency = 3\n")
    with caplog.at_level("WARNING", logger="batchd.config"):
        assert config.load(config_file=str(toml), environ={}).fleet_max_running == 3
        assert config.load(environ={"BATCHD_FLEET_CONCURRENCY": "4"}).fleet_max_running == 4
        assert config.load({"fleet_concurrency": "5"}, environ={}).fleet_max_running == 5
    assert [r.getMessage() for r in caplog.records] == [
        f"{toml}: fleet_concurrency is deprecated: use fleet_max_running (the same setting)",
        "BATCHD_FLEET_CONCURRENCY is deprecated: use BATCHD_FLEET_MAX_RUNNING (the same setting)",
        "--fleet-concurrency is deprecated: use --fleet-max-running (the same setting)",
    ]
    # Within one source the new name wins; across sources the usual order holds.
    env = {"BATCHD_FLEET_CONCURRENCY": "4", "BATCHD_FLEET_MAX_RUNNING": "6"}
    assert config.load(config_file=str(toml), environ=env).fleet_max_running == 6
    assert config.load({"fleet_concurrency": "2"}, environ=env).fleet_max_running == 2
    with pytest.raises(exceptions.ConfigError, match="BATCHD_FLEET_CONCURRENCY: invalid literal"):
        config.load(environ={"BATCHD_FLEET_CONCURRENCY": "many"})


def _out_of_bounds(bounds: Bounds) -> float:
    return bounds.low if bounds.low_open else bounds.low - 1


@pytest.mark.parametrize("setting", [s for s in config.SETTINGS if s.bounds], ids=lambda s: s.name)
def test_every_bound_is_checked(setting: config.Setting) -> None:
    assert setting.bounds is not None
    low = _out_of_bounds(setting.bounds)
    with pytest.raises(exceptions.ConfigError, match=f"^{setting.name}: "):
        config.load(environ={setting.env: f"{low:g}"})
    if setting.bounds.high != math.inf:
        with pytest.raises(exceptions.ConfigError, match=f"^{setting.name}: "):
            config.load(environ={setting.env: f"{setting.bounds.high + 1:g}"})
    edge = setting.bounds.low + (1 if setting.bounds.low_open else 0)
    assert getattr(config.load(environ={setting.env: f"{edge:g}"}), setting.name) == edge


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BATCHD_PORT": "0"}, "port: 0 is not a TCP port"),
        ({"BATCHD_CLAIM_CHUNK": "0"}, "claim_chunk: must be at least 1"),
        ({"BATCHD_LEASE": "0s"}, "lease: must be positive"),
        ({"BATCHD_FLEET_MAX_RUNNING": "-1"}, "fleet_max_running: must be 0 (no limit) or more"),
        (
            {"BATCHD_GGUF_CACHE_RAM": "-2"},
            "gguf_cache_ram: must be -1 (llama.cpp's default), 0 (off) or more",
        ),
    ],
)
def test_bound_messages(env: dict[str, str], message: str) -> None:
    with pytest.raises(exceptions.ConfigError) as raised:
        config.load(environ=env)
    assert raised.value.message == message


def test_log_level_is_one_of_the_known_words() -> None:
    assert config.load(environ={"BATCHD_LOG_LEVEL": "WARNING"}).log_level is config.LogLevel.WARNING
    assert config.load(environ={}).log_level == "info"
    with pytest.raises(exceptions.ConfigError, match="BATCHD_LOG_LEVEL: not a log level: 'loud'"):
        config.load(environ={"BATCHD_LOG_LEVEL": "loud"})


def test_api_keys_and_redacted_repr() -> None:
    s = config.load(environ={"BATCHD_API_KEYS": "sekrit:team-a,other", "BATCHD_HOST": "0.0.0.0"})
    assert s.api_keys == {"sekrit": "team-a", "other": "default"}
    assert "sekrit" not in repr(s) and "<2 keys>" in repr(s)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("30s", 30), ("5m", 300), ("24h", 86400), ("29d", 2505600), ("12", 12)],
)
def test_durations(text: str, seconds: float) -> None:
    assert config.parse_duration(text) == seconds


def _readme_rows() -> dict[str, list[str]]:
    """The configuration table of README.md: flag, env, default, meaning, by env var."""
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    rows = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].startswith("`BATCHD_"):
            rows[cells[1].strip("`")] = cells
    return rows


def test_every_setting_has_its_row_in_the_readme() -> None:
    rows = _readme_rows()
    for setting in config.SETTINGS:
        assert setting.env in rows, f"{setting.env} is not documented in README.md"
        flag, _, _, meaning = rows[setting.env]
        assert flag == (f"`{setting.option}`" if setting.commands else "—"), setting.name
        for alias in setting.aliases:  # an old name stays documented while it is read
            for spelling in (alias, config.env_name(alias), config.option_name(alias)):
                assert f"`{spelling}`" in meaning, (
                    f"{spelling} (old name of {setting.name}) is not in README.md"
                )
    assert set(rows) == {s.env for s in config.SETTINGS}, "README.md documents a setting that does not exist"


def test_the_docs_name_only_settings_that_exist() -> None:
    root = Path(__file__).parents[3]
    known = {s.env for s in config.SETTINGS} | {
        config.env_name(a) for s in config.SETTINGS for a in s.aliases
    }
    known |= {"BATCHD_CONFIG", "BATCHD_TEST_POSTGRES_URL", "BATCHD_BENCH_POSTGRES_URL"}  # not settings
    known |= {"BATCHD_ADMIN_KEY"}  # the admin key of `batchd keys` (a client, not a setting)
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        named = set(re.findall(r"BATCHD_[A-Z0-9_]+", doc.read_text()))
        assert named <= known, f"{doc.name} names {sorted(named - known)}, which batchd does not read"
