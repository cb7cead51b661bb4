"""The `llamacpp` backend: llama.cpp's own server running inside batchd on a GGUF file.

`batchd serve --gguf ./model.gguf` loads the model with the `xllamacpp` wheel (llama.cpp's
`llama-server` compiled in; `pip install batchd[llamacpp]`), which listens on a free loopback port
with `gguf_parallel` slots of `gguf_ctx` tokens each. Every model routes to it through the
`openai` backend's translation, with as many calls in flight as there are slots. Token counts
are exact: llama.cpp's chat template and tokenizer (`/apply-template`, `/tokenize`).

The chat template is the GGUF's own. A GGUF that ships none (many base models) would silently get
ChatML from llama.cpp, and a model never trained on it answers with template tokens in its text:
batchd warns at start, and `gguf_chat_template` (or a `llamacpp` route's `chat_template`) names
another — a llama.cpp built-in template by name (`llama3`, `gemma`, …; llama.cpp's own
renderer, which knows no tools) or a Jinja file (rendered as a GGUF's own template is: tools and
`enable_thinking` work). A name llama.cpp does not know stops the start.
"""

from __future__ import annotations

import importlib
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from batchd import exceptions
from batchd.backends import gguf as gguf_file
from batchd.backends.http import Upstream
from batchd.backends.openai import OpenAIBackend
from batchd.config.routes import BackendKind, ReasoningMode

logger = logging.getLogger("batchd.llamacpp")
PIN = "xllamacpp==2026.10.11549"  # the version pyproject's `llamacpp` extra pins
TOKENIZER_CONNECTIONS = 4  # to llama.cpp's /apply-template and /tokenize, for token counts
JINJA_SUFFIXES = (".jinja", ".jinja2", ".j2")
CHECK_TIMEOUT = 10.0  # seconds llama.cpp has to render the check of a named template
POOLING_MEAN = 1  # llama.cpp's LLAMA_POOLING_TYPE_MEAN


def chat_template(value: str) -> tuple[str, bool] | None:
    """What llama.cpp's `chat_template` and `use_jinja` get from the setting: a Jinja file's text
    (True), a built-in template's name (False), or None for the GGUF's own. Raises ConfigError for
    a path that is not a file."""
    if not value:
        return None
    path = Path(value).expanduser()
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8"), True
        except (OSError, UnicodeDecodeError) as exc:
            raise exceptions.ConfigError(f"gguf_chat_template: {value} cannot be read: {exc}") from exc
    if "/" in value or "\\" in value or value.endswith(JINJA_SUFFIXES):
        raise exceptions.ConfigError(f"gguf_chat_template: {value} is not a file")
    return value, False


def load_server(
    gguf: str,
    *,
    parallel: int,
    ctx: int,
    threads: int = -1,
    cache_ram_mib: int | None = None,
    template: str = "",
    embeddings: bool = False,
) -> Any:
    """Start llama.cpp's server on `gguf` with chat `template` (module docstring; "": the GGUF's),
    serving `/v1/embeddings` too when `embeddings`; raises ConfigError when it cannot."""
    if not Path(gguf).is_file():
        raise exceptions.ConfigError(f"gguf: {gguf} is not a file")
    chosen = chat_template(template)
    if not gguf_file.has_chat_template(gguf) and chosen is None:
        logger.warning(
            "%s has no chat template: llama.cpp will apply ChatML, which a model not trained on it "
            "answers with template tokens in its text; set gguf_chat_template to a llama.cpp "
            "built-in name (llama3, gemma, …) or a Jinja file",
            gguf,
        )
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
    if chosen is not None:
        params.chat_template, params.use_jinja = chosen
    if embeddings:  # chat and completions still work on such a server
        params.embedding = True
        params.pooling_type = pooling_type(gguf)
    try:
        server = xllamacpp.Server(params)
    except Exception as exc:
        raise exceptions.ConfigError(f"gguf: llama.cpp could not load {gguf}: {exc}") from exc
    if chosen is not None and not chosen[1]:
        _check_named(str(server.listening_address).rstrip("/"), template)
    return server


def pooling_type(gguf: str) -> int:
    """llama.cpp's pooling of embeddings: the GGUF's own (an embedding model declares it), else
    mean (a decoder model declares none, and llama.cpp's `none` is not OpenAI-compatible)."""
    arch = gguf_file.metadata_value(gguf, "general.architecture")
    declared = gguf_file.metadata_value(gguf, f"{arch}.pooling_type") if isinstance(arch, str) else None
    return declared if isinstance(declared, int) and declared > 0 else POOLING_MEAN


def _check_named(root: str, name: str) -> None:
    """A built-in template's name is known to llama.cpp: it renders a message with it."""
    body = json.dumps({"messages": [{"role": "user", "content": "hello"}]}).encode()
    request = urllib.request.Request(root + "/apply-template", body, {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=CHECK_TIMEOUT) as answer:
            answer.read()
    except (urllib.error.URLError, OSError) as exc:
        raise exceptions.ConfigError(
            f"gguf_chat_template: llama.cpp has no built-in template named {name!r} ({exc}); "
            "name one it knows (chatml, llama3, gemma, mistral-v7, phi4, …) or give a Jinja file"
        ) from exc


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
        template: str = "",
        embeddings: bool = False,
    ) -> None:
        self.server = load_server(
            gguf,
            parallel=parallel,
            ctx=ctx,
            threads=threads,
            cache_ram_mib=cache_ram_mib,
            template=template,
            embeddings=embeddings,
        )
        root = str(self.server.listening_address).rstrip("/")
        logger.info("llama.cpp serving %s at %s/v1 with %d slots", gguf, root, parallel)
        super().__init__(
            root + "/v1", concurrency=parallel, timeout=timeout, reasoning=ReasoningMode.CHAT_TEMPLATE_KWARGS
        )
        #: Where `/v1/embeddings` lines go (backends/endpoints/passthrough.py): None without gguf_embeddings.
        self.embeddings = self.upstream if embeddings else None
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
