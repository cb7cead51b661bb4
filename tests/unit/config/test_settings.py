from __future__ import annotations

from pathlib import Path

import pytest

from batchd import config, exceptions


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


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    for setting in config.SETTINGS:
        assert setting.env in readme, f"{setting.env} is not documented in README.md"
