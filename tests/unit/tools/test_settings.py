"""The server tools' settings: the [web_search] and [web_fetch] tables, env, a route's provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchd import config, exceptions
from batchd.config.routes import parse_routes


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> config.Settings:
    path = tmp_path / "batchd.toml"
    path.write_text(text)
    return config.load(config_file=str(path), environ=environ or {})


def test_tables_in_the_file(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        'tool_max_iterations = 4\n[web_search]\nprovider = "searxng"\nsearxng_url = "http://s:8888"\n'
        'index = "/srv/idx.db"\nmax_results = 8\n'
        '[web_fetch]\nallowed_hosts = ["127.0.0.1", "10.0.0.0/8"]\nmax_bytes = "2MB"\ntimeout = "5s"\n',
    )
    assert (s.web_search_provider, s.web_search_searxng_url, s.web_search_index) == (
        "searxng", "http://s:8888", "/srv/idx.db",
    )  # fmt: skip
    assert (s.tool_max_iterations, s.web_search_max_results) == (4, 8)
    assert s.web_fetch_allowed_hosts == ("127.0.0.1", "10.0.0.0/8")
    assert (s.web_fetch_max_bytes, s.web_fetch_timeout) == (2 * 1024 * 1024, 5.0)
    defaults = config.load(environ={})
    assert (defaults.web_search_provider, defaults.tool_max_iterations, defaults.web_search_index) == (
        "local",
        10,
        "",
    )


def test_env_over_file(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        '[web_search]\nprovider = "brave"\n',
        {"BATCHD_WEB_SEARCH_PROVIDER": "LOCAL", "BATCHD_WEB_FETCH_ALLOWED_HOSTS": "a.test, 127.0.0.1,"},
    )
    assert s.web_search_provider == "local" and s.web_fetch_allowed_hosts == ("a.test", "127.0.0.1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[web_search]\nprovder = "local"\n',
            "unknown setting 'web_search.provder' (did you mean 'web_search.provider'?)",
        ),
        ('web_search_provider = "local"\n', "write 'web_search_provider' as 'provider' under [web_search]"),
        (
            '[web_search]\nprovider = "google"\n',
            "web_search.provider: 'google' is not one of local, searxng, brave",
        ),
        ("[web_search]\nmax_results = 50\n", "web_search_max_results: 50 is not between 1 and 20"),
        ("tool_max_iterations = 0\n", "tool_max_iterations: must be at least 1"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(exceptions.ConfigError) as caught:
        load(tmp_path, text)
    assert message in caught.value.message


def test_a_route_names_its_provider() -> None:
    [route] = parse_routes([{"model": "x", "backend": "simulated", "web_search_provider": "searxng"}])
    assert route.web_search_provider == "searxng"
    with pytest.raises(ValueError, match="web_search_provider 'bing' is not one of local, searxng, brave"):
        parse_routes([{"model": "x", "web_search_provider": "bing"}])


def test_the_key_is_not_shown() -> None:
    s = config.load(environ={"BATCHD_SERVER_TOOLS_KEY": "sekrit"})
    assert s.server_tools_key == "sekrit" and "sekrit" not in repr(s)
