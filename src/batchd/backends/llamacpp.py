"""The `llamacpp` backend: llama.cpp's own server running inside batchd on a GGUF file.

`batchd serve --gguf ./model.gguf` loads the model with the `xllamacpp` wheel (llama.cpp's
`llama-server` compiled in; `pip install batchd[llamacpp]`), which listens on a free loopback port
with `gguf_parallel` slots of `gguf_ctx` tokens each. Every model routes to it through the
`openai` backend's translation, with as many calls in flight as there are slots. Token counts
are exact: llama.cpp's chat template and tokenizer (`/apply-template`, `/tokenize`).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from batchd import exceptions
from batchd.backends.http import Upstream
from batchd.backends.openai import OpenAIBackend
from batchd.config.routes import BackendKind, ReasoningMode

logger = logging.getLogger("batchd.llamacpp")
PIN = "xllamacpp==2026.10.11549"  # the version pyproject's `llamacpp` extra pins
TOKENIZER_CONNECTIONS = 4  # to llama.cpp's /apply-template and /tokenize, for token counts


def load_server(
    gguf: str, *, parallel: int, ctx: int, threads: int = -1, cache_ram_mib: int | None = None
) -> Any:
    """Start llama.cpp's server on `gguf`; raises ConfigError when it cannot."""
    if not Path(gguf).is_file():
        raise exceptions.ConfigError(f"gguf: {gguf} is not a file")
    try:
        # Untyped (no stubs), and optional: imported by name, as a value of type Any.
        xllamacpp: Any = importlib.import_module("xllamacpp")
    except ImportError as exc:
        raise exceptions.ConfigError(
            f"gguf: the llamacpp backend needs the xllamacpp wheel: pip install 'batchd[llamacpp]' ({PIN})"
        ) from exc
    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.n_parallel = parallel
    params.n_ctx = ctx * parallel  # llama.cpp splits the context among the slots
    params.port = 0  # a free port, read back from listening_address
    params.hostnames = ["127.0.0.1"]
    params.cache_prompt = True
    params.verbosity = -1
    if cache_ram_mib is not None:  # llama.cpp's host-memory prompt cache (default 8 GiB)
        params.cache_ram_mib = cache_ram_mib
    if threads > 0:
        params.cpuparams.n_threads = threads
    try:
        server = xllamacpp.Server(params)
    except Exception as exc:
        raise exceptions.ConfigError(f"gguf: llama.cpp could not load {gguf}: {exc}") from exc
    return server


class LlamaCppBackend(OpenAIBackend):
    """The openai backend, pointed at a llama.cpp server that this backend owns."""

    kind = BackendKind.LLAMACPP

    def __init__(
        self,
        gguf: str,
        *,
        parallel: int,
        ctx: int,
        timeout: float,
        threads: int = -1,
        cache_ram_mib: int | None = None,
    ) -> None:
        self.server = load_server(
            gguf, parallel=parallel, ctx=ctx, threads=threads, cache_ram_mib=cache_ram_mib
        )
        root = str(self.server.listening_address).rstrip("/")
        logger.info("llama.cpp serving %s at %s/v1 with %d slots", gguf, root, parallel)
        super().__init__(
            root + "/v1", concurrency=parallel, timeout=timeout, reasoning=ReasoningMode.CHAT_TEMPLATE_KWARGS
        )
        # Templating and tokenizing take no slot: their own connections.
        self.tokenizer = Upstream("llama.cpp", root, concurrency=TOKENIZER_CONNECTIONS, timeout=timeout)

    async def count_tokens(self, params: dict[str, Any], *, betas: Sequence[str] = ()) -> int:
        """llama.cpp's own tokenizer on the prompt its chat template makes of `params`
        (`/apply-template`, then `/tokenize`): exact, and nothing is generated."""
        templated, _ = await self.tokenizer.post_json("/apply-template", self.chat_body(params))
        prompt = templated.get("prompt")
        if not isinstance(prompt, str):
            raise exceptions.BackendError("llama.cpp's /apply-template answered without a prompt", status=502)
        tokenized, _ = await self.tokenizer.post_json(
            "/tokenize", {"content": prompt, "add_special": True, "parse_special": True}
        )
        tokens = tokenized.get("tokens")
        if not isinstance(tokens, list):
            raise exceptions.BackendError("llama.cpp's /tokenize answered without tokens", status=502)
        return len(tokens)

    async def aclose(self) -> None:
        await self.tokenizer.aclose()
        await super().aclose()
        self.server = None  # the last reference: llama.cpp's server stops in its destructor
