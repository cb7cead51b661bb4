"""The `llamacpp` backend: llama.cpp's own server running inside batchd on a GGUF file.

`batchd serve --gguf ./model.gguf` loads the model with the `xllamacpp` wheel (llama.cpp's
`llama-server` compiled in; `pip install batchd[llamacpp]`), which listens on a free loopback port
with `gguf_parallel` slots of `gguf_ctx` tokens each. Every model routes to it through the
`openai` backend's translation, with as many calls in flight as there are slots.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from batchd import exceptions
from batchd.backends.openai import OpenAIBackend
from batchd.config.routes import BackendKind, ReasoningMode

logger = logging.getLogger("batchd.llamacpp")
PIN = "xllamacpp==2026.10.11549"  # the version pyproject's `llamacpp` extra pins


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
        base_url = str(self.server.listening_address).rstrip("/") + "/v1"
        logger.info("llama.cpp serving %s at %s with %d slots", gguf, base_url, parallel)
        super().__init__(
            base_url, concurrency=parallel, timeout=timeout, reasoning=ReasoningMode.CHAT_TEMPLATE_KWARGS
        )

    async def aclose(self) -> None:
        await super().aclose()
        self.server = None  # the last reference: llama.cpp's server stops in its destructor
