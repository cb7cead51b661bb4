"""The openai backend's token counts and model list, against a real loopback server."""

from __future__ import annotations

import orjson
import pytest

from batchd import exceptions
from batchd.backends.openai import OpenAIBackend
from tests.integration.backends_upstream import Scripted

PARAMS = {"model": "claude-x", "max_tokens": 1 << 20, "messages": [{"role": "user", "content": "Hi"}]}
COMPLETION = {
    "id": "c1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Y"}, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 42, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 40}},
}


async def test_count_tokens_is_the_prompt_of_a_one_token_completion(scripted: Scripted) -> None:
    url, seen = await scripted.canned(body=orjson.dumps(COMPLETION))
    b = OpenAIBackend(url + "/v1", upstream_model="qwen")
    schema = {"type": "object"}
    fmt = {"format": {"type": "json_schema", "schema": schema}}
    assert await b.count_tokens({**PARAMS, "output_config": fmt}) == 42  # cached tokens included
    await b.aclose()
    line, _, body = seen[0]
    sent = orjson.loads(body)
    assert line == "POST /v1/chat/completions HTTP/1.1"
    assert (sent["model"], sent["max_tokens"]) == ("qwen", 1)
    assert sent["response_format"]["json_schema"]["schema"] == schema


async def test_a_count_without_usage_is_an_error(scripted: Scripted) -> None:
    url, _ = await scripted.canned(body=orjson.dumps({**COMPLETION, "usage": None}))
    b = OpenAIBackend(url)
    with pytest.raises(exceptions.BackendError, match="cannot count tokens") as info:
        await b.count_tokens(PARAMS)
    await b.aclose()
    assert info.value.status == 502


async def test_model_ids(scripted: Scripted) -> None:
    url, seen = await scripted.canned(body=b'{"object": "list", "data": [{"id": "q/1"}, {"id": "q/2"}]}')
    b = OpenAIBackend(url + "/v1")
    assert await b.model_ids() == ["q/1", "q/2"]
    await b.aclose()
    assert seen[0][0] == "GET /v1/models HTTP/1.1"
