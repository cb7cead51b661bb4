"""The routing table: parsing, validation at start, first-match routing, per-route limits."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from batchd import config, exceptions
from batchd.backends.anthropic import AnthropicBackend
from batchd.backends.openai import OpenAIBackend
from batchd.backends.simulator import SimulatedBackend
from batchd.config.routes import parse_routes
from batchd.engine.router import Router, check
from batchd.tools.kit import unwrap
from batchd.tools.loop import ToolLoop
from tests.integration.backends_upstream import Scripted

TOML = """
[batchd]
concurrency = 16

[[routes]]
model = "claude-haiku-*"
backend = "openai"
base_url = "http://127.0.0.1:8000/v1/"
upstream_model = "Qwen/Qwen3-8B"
api_key_env = "VLLM_KEY"
concurrency = 4
timeout = "30s"

[[routes]]
model = "claude-opus-4-1"
backend = "anthropic"
base_url = "http://127.0.0.1:9000"
betas = ["x-1"]

[[routes]]
model = "sim-*"
"""


def load(tmp_path: Path, text: str = TOML, **env: str) -> config.Settings:
    path = tmp_path / "batchd.toml"
    path.write_text(text)
    return config.load(config_file=str(path), environ=env)


async def test_routes_from_toml(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert settings.concurrency == 16
    first, second, third = settings.routes
    assert first.base_url == "http://127.0.0.1:8000/v1" and first.timeout == 30.0 and first.concurrency == 4
    assert second.betas == ("x-1",) and second.timeout is None and second.concurrency == 64
    assert third.backend == "simulated"
    router = Router.from_settings(settings, environ={"VLLM_KEY": "sekrit"})
    try:
        haiku = router.route("claude-haiku-4-5")
        assert isinstance(haiku.backend, ToolLoop)  # engine routes run server tools in a loop
        assert isinstance(haiku.backend.inner, OpenAIBackend)
        assert haiku.backend.inner.upstream.headers["authorization"] == "Bearer sekrit"
        assert haiku.backend.inner.upstream.timeout == 30.0
        assert haiku.limit.limit == 4
        assert isinstance(unwrap(router.route("claude-opus-4-1").backend), AnthropicBackend)
        assert router.route("claude-opus-4-1-x") is router.default  # exact names do not prefix-match
        assert isinstance(router.route("sim-1").backend, SimulatedBackend)
        assert router.route("gpt-4") is router.default
        assert router.default.limit.limit == 16
    finally:
        await router.aclose()


def test_routes_from_env_json() -> None:
    settings = config.load(
        environ={"BATCHD_ROUTES": '[{"model": "*", "backend": "anthropic", "base_url": "http://h"}]'}
    )
    assert settings.routes[0].matches("anything")


async def test_fleet_concurrency_caps_the_process_semaphore() -> None:
    settings = config.load(
        environ={
            "BATCHD_ROUTES": '[{"model": "a", "concurrency": 8, "fleet_concurrency": 3}, {"model": "b"}]'
        }
    )
    assert [r.fleet_concurrency for r in settings.routes] == [3, 0]
    router = Router.from_settings(settings)
    try:
        assert router.route("a").limit.limit == 3  # no one process can use more than the fleet's
        assert router.route("b").limit.limit == 64
    finally:
        await router.aclose()


def test_first_match_wins() -> None:
    routes = parse_routes([{"model": "a*", "backend": "simulated"}, {"model": "ab*", "backend": "simulated"}])
    assert [r.matches("abc") for r in routes] == [True, True]
    assert routes[0].is_glob and not parse_routes([{"model": "abc"}])[0].is_glob


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"backend": "openai"}, "model is required"),
        ({"model": "x", "backend": "vllm"}, "backend 'vllm' is not one of"),
        ({"model": "x", "backend": "openai"}, "base_url is required for the openai backend"),
        ({"model": "x", "backend": "openai", "base_url": "localhost:8000"}, "must start with http"),
        (
            {"model": "x", "backend": "openai", "base_url": "http://h", "concurrency": 0},
            "concurrency must be",
        ),
        (
            {"model": "x", "backend": "openai", "base_url": "http://h", "fleet_concurrency": -1},
            "fleet_concurrency must be an integer",
        ),
        (
            {"model": "x", "backend": "openai", "base_url": "http://h", "fleet_concurrency": "4"},
            "fleet_concurrency must be an integer",
        ),
        (
            {"model": "x", "backend": "openai", "base_url": "http://h", "timeout": "soon"},
            "timeout: not a duration",
        ),
        (
            {"model": "x", "backend": "openai", "base_url": "http://h", "api_key": "sk-1"},
            "never sits in the file",
        ),
        ({"model": "x", "backend": "openai", "base_url": "http://h", "colour": 1}, "unknown key 'colour'"),
        ({"model": "x", "backend": "openai", "base_url": "http://h", "reasoning": "yes"}, "reasoning 'yes'"),
        ({"model": "x", "base_url": "http://h"}, "base_url is not used by the simulated backend"),
        (
            {"model": "x", "backend": "openai", "base_url": "http://h", "chat_template": "llama3"},
            "chat_template is used by the llamacpp backend only",
        ),
    ],
)
def test_bad_route_is_a_config_error(route: dict[str, object], message: str) -> None:
    import orjson

    with pytest.raises(exceptions.ConfigError, match="BATCHD_ROUTES") as info:
        config.load(environ={"BATCHD_ROUTES": orjson.dumps([route]).decode()})
    assert message in info.value.message


def test_missing_key_env_is_refused_at_start(tmp_path: Path) -> None:
    settings = load(tmp_path)
    with pytest.raises(exceptions.ConfigError, match="api_key_env names VLLM_KEY, which is not set"):
        check(settings, environ={})
    check(settings, environ={"VLLM_KEY": "k"})


def test_llamacpp_routes_share_one_chat_template() -> None:
    """They share the one llama.cpp server: a template named by a route is its template, and two
    different ones are refused at start."""
    from batchd.engine.router import gguf_template

    one = [
        {"model": "a", "backend": "llamacpp", "chat_template": "llama3"},
        {"model": "b", "backend": "llamacpp"},
    ]
    assert gguf_template(config.load(environ={"BATCHD_ROUTES": orjson.dumps(one).decode()})) == "llama3"
    env = {"BATCHD_ROUTES": orjson.dumps(one).decode(), "BATCHD_GGUF_CHAT_TEMPLATE": "gemma"}
    with pytest.raises(exceptions.ConfigError, match="one chat template, but 2 are named"):
        gguf_template(config.load(environ=env))
    assert gguf_template(config.load(environ={"BATCHD_GGUF_CHAT_TEMPLATE": "gemma"})) == "gemma"


def test_bad_toml_routes(tmp_path: Path) -> None:
    with pytest.raises(exceptions.ConfigError, match=r"routes\[0\] \(x\): backend 'nope'"):
        load(tmp_path, '[[routes]]\nmodel = "x"\nbackend = "nope"\n')


async def test_listed_models_are_the_upstreams_the_glob_sends_there(scripted: Scripted) -> None:
    url, seen = await scripted.canned(body=b'{"data": [{"id": "g-a"}, {"id": "g-exact"}, {"id": "other"}]}')
    table = [
        {"model": "g-exact", "backend": "simulated"},
        {"model": "g-*", "backend": "openai", "base_url": f"{url}/v1"},
        {"model": "h-*", "backend": "openai", "base_url": f"{url}/v1", "upstream_model": "one"},
        {"model": "s-*", "backend": "simulated"},
        {"model": "dead-*", "backend": "anthropic", "base_url": "http://127.0.0.1:9"},
    ]
    router = Router.from_settings(config.load(environ={"BATCHD_ROUTES": orjson.dumps(table).decode()}))
    try:
        exact, glob, mapped, simulated, dead = router.routes
        # g-exact is the route before's: only g-a reaches the upstream through g-*.
        assert await router.listed_models(glob) == ["g-a"]
        assert await router.listed_models(glob) == ["g-a"]
        assert len(seen) == 1  # kept, not asked again
        for route in (exact, mapped, simulated):
            assert await router.listed_models(route) == []
        assert await router.listed_models(dead) == []  # unreachable: left out, logged
    finally:
        await router.aclose()
