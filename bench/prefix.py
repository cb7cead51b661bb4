"""Prefix-aware dispatch against llama.cpp: cached prompt tokens and throughput, grouped vs arrival order.

    python bench/prefix.py                       # the tiny test model, built on the fly
    python bench/prefix.py --gguf model.gguf     # a real model

One batch of PREFIXES x QUESTIONS requests, each a long shared system prompt (the prefix) plus a
short question, submitted interleaved (p0 q0, p1 q0, ... p0 q1, ...), as a batch arriving from many
users would be. It runs twice through `batchd serve` routed (`openai` backend) to a fresh llama.cpp
server (the xllamacpp wheel): in arrival order (the default) and with `--group-prefixes`. There are
more prefixes than llama.cpp slots, and llama.cpp's host-memory prompt cache is off here unless
`--cache-ram` is given, as with a GPU engine whose prefix cache is its KV cache: in arrival order
the slots keep evicting each other's prefix. The figures are in docs/backends.md.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import anthropic  # noqa: E402
from tests.acceptance.server import ServerProcess  # noqa: E402


def make_requests(prefixes: int, questions: int, words: int, seed: int = 7) -> list[dict[str, Any]]:
    from tests.acceptance import tiny_gguf

    rng = random.Random(seed)
    vocab = tiny_gguf.WORDS.split()
    systems = [f"Document {p}: " + " ".join(rng.choice(vocab) for _ in range(words)) for p in range(prefixes)]
    out = []
    for q in range(questions):
        for p in range(prefixes):
            out.append(
                {
                    "custom_id": f"p{p}-q{q}",
                    "params": {
                        "model": "local",
                        "max_tokens": 16,
                        "system": systems[p],
                        "messages": [{"role": "user", "content": f"question {q} about document {p}"}],
                    },
                }
            )
    return out


def run(base_url: str, requests: list[dict[str, Any]], *, grouped: bool, parallel: int) -> dict[str, float]:
    """One batch through a fresh `batchd serve` routing every model to the llama.cpp at `base_url`."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "batchd.toml"
        config.write_text(
            f'[[routes]]\nmodel = "*"\nbackend = "openai"\nbase_url = "{base_url}/v1"\n'
            f"concurrency = {parallel}\n"
        )
        env = {"BATCHD_CONFIG": str(config), "BATCHD_GROUP_PREFIXES": "true" if grouped else "false"}
        proc = ServerProcess(Path(tmp) / "data", env).start()
        try:
            client = anthropic.Anthropic(base_url=proc.base_url, api_key="bench", max_retries=0, timeout=600)
            started = time.perf_counter()
            batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
            while client.messages.batches.retrieve(batch.id).processing_status != "ended":
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            cached = uncached = ok = 0
            for line in client.messages.batches.results(batch.id):
                if line.result.type == "succeeded":
                    ok += 1
                    usage = line.result.message.usage
                    cached += usage.cache_read_input_tokens or 0
                    uncached += usage.input_tokens
            client.close()
        finally:
            proc.stop()
    total = cached + uncached
    return {
        "succeeded": ok,
        "seconds": elapsed,
        "req_per_s": len(requests) / elapsed,
        "prompt_tokens": total,
        "cached_tokens": cached,
        "cached_share": cached / total if total else 0.0,
        "computed_tokens": uncached,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gguf", type=Path, help="a GGUF model (default: build the tiny test model)")
    parser.add_argument("--prefixes", type=int, default=8)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--words", type=int, default=600, help="words in each shared system prompt")
    parser.add_argument("--parallel", type=int, default=4, help="llama.cpp slots")
    parser.add_argument("--ctx", type=int, default=4096, help="context per slot")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp CPU threads")
    parser.add_argument(
        "--cache-ram",
        type=int,
        default=0,
        help="llama.cpp host prompt cache, MiB (default 0: only the slots' KV cache, as on a GPU engine)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gguf = args.gguf
        if gguf is None:
            from tests.acceptance import tiny_gguf

            gguf = tiny_gguf.build(Path(tmp) / "tiny.gguf")
        requests = make_requests(args.prefixes, args.questions, args.words)
        print(
            f"{len(requests)} requests, {args.prefixes} prefixes x {args.questions} questions, "
            f"{args.parallel} llama.cpp slots, model {gguf.name}"
        )
        from batchd.backends.llamacpp import load_server

        for round_ in range(args.rounds):
            for grouped in (False, True):
                # A fresh llama.cpp each run, so no run inherits another's cache.
                server = load_server(
                    str(gguf),
                    parallel=args.parallel,
                    ctx=args.ctx,
                    threads=args.threads,
                    cache_ram_mib=args.cache_ram,
                )
                try:
                    r = run(
                        str(server.listening_address).rstrip("/"),
                        requests,
                        grouped=grouped,
                        parallel=args.parallel,
                    )
                finally:
                    del server
                label = "grouped      " if grouped else "arrival order"
                print(
                    f"round {round_ + 1} {label}: {r['succeeded']} ok in {r['seconds']:.2f}s "
                    f"({r['req_per_s']:.1f} req/s), prompt tokens {r['prompt_tokens']}, "
                    f"cached {r['cached_tokens']} ({r['cached_share']:.0%}), computed {r['computed_tokens']}"
                )


if __name__ == "__main__":
    main()
