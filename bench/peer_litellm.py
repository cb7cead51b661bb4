"""The peer: LiteLLM running an OpenAI batch itself against a `hosted_vllm` (OpenAI-compatible) upstream.

LiteLLM is not a dependency of batchd: it is installed, pinned, into its own virtualenv under
~/.cache/batchd-bench/ on first use. LiteLLM's documented way to run a batch against vLLM-like
servers (which have no /v1/files or /v1/batches) is its proxy: with a database configured
(`DATABASE_URL`, PostgreSQL through Prisma), `POST /v1/files` (purpose=batch, `x-litellm-model`) keeps
the input, `POST /v1/batches` runs every line through the deployment with
`LITELLM_EXECUTED_BATCH_CONCURRENCY` calls in flight, and the output file is served from the
database. `run_batch` does exactly that (`proxy` mode) when it can.

The proxy's Prisma client needs Prisma's query and schema engine binaries, which Prisma downloads
from its own binary host at first use; on a machine that reaches only the package registries that
download fails and no registry package ships them. Then `run_batch` measures the closest thing that
runs (`runner` mode): the same JSONL parsed by LiteLLM's own batch-input parser and every line sent
through LiteLLM's Router (`acompletion`, the call the proxy's batch runner makes per line) at the
same concurrency, in one process, without the proxy's HTTP front and without its database writes:
an upper bound for the proxy's batch throughput. The result says which mode ran.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

PIN = "1.108.7"  # litellm[proxy], the version measured
PRISMA_PIN = "0.15.0"  # the Prisma client LiteLLM's proxy uses for its database
VENV = Path.home() / ".cache" / "batchd-bench" / f"litellm-{PIN}"
MODEL = "tiny"
MASTER_KEY = "sk-batchd-bench"
PG = "postgresql://postgres@127.0.0.1:5432"


class PeerUnavailable(RuntimeError):
    """LiteLLM could not be installed or run here; the message says why."""


def ensure_venv() -> Path:
    """The pinned LiteLLM's python, installed on first use."""
    python = VENV / "bin" / "python"
    if (VENV / "bin" / "prisma").exists():
        return python
    shutil.rmtree(VENV, ignore_errors=True)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"litellm[proxy]=={PIN}", f"prisma=={PRISMA_PIN}"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise PeerUnavailable(f"pip install litellm[proxy]=={PIN} failed: {done.stderr.strip()[-400:]}")
    return python


def batch_jsonl(items: list[tuple[str, str]], system: str, max_tokens: int) -> bytes:
    """The requests in OpenAI's batch input format."""
    lines = []
    for custom_id, text in items:
        body = {
            "model": MODEL,
            "max_tokens": max_tokens,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": text}],
        }
        lines.append(
            json.dumps(
                {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
            )
        )
    return ("\n".join(lines) + "\n").encode()


def run_batch(
    base_url: str, items: list[tuple[str, str]], *, concurrency: int, max_tokens: int, system: str
) -> dict[str, Any]:
    """One batch through LiteLLM against the llama.cpp at `base_url`: seconds, succeeded, mode."""
    python = ensure_venv()
    data = batch_jsonl(items, system, max_tokens)
    if not _proxy_blocked:
        try:
            return run_proxy_batch(python, base_url, data, concurrency)
        except PeerUnavailable as exc:
            _proxy_blocked.append(str(exc))
    result = run_runner_batch(python, base_url, data, concurrency)
    result["why"] = _proxy_blocked[0]
    return result


_proxy_blocked: list[str] = []  # why proxy mode cannot run here, once found


# -- proxy mode: LiteLLM's documented batch flow -----------------------------------------------


def check_prisma(python: Path) -> None:
    """Prisma's engines, or PeerUnavailable naming what failed."""
    # `prisma --version` fetches the engines it lacks (the CLI itself comes from the npm registry).
    done = subprocess.run(
        [str(python), "-m", "prisma", "--version"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tempfile.gettempdir(),
    )
    if done.returncode != 0:
        last = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["(no output)"]
        raise PeerUnavailable(
            "LiteLLM's proxy keeps batches in PostgreSQL through Prisma, whose engine binaries "
            f"could not be fetched: {last[0][:300]}"
        )


def run_proxy_batch(python: Path, base_url: str, data: bytes, concurrency: int) -> dict[str, Any]:
    check_prisma(python)
    db = f"litellm_bench_{os.getpid()}"
    subprocess.run(["psql", PG + "/postgres", "-qc", f"CREATE DATABASE {db}"], check=True)
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "litellm.yaml"
        config.write_text(
            "model_list:\n"
            f"  - model_name: {MODEL}\n"
            "    litellm_params:\n"
            f"      model: hosted_vllm/{MODEL}\n"
            f"      api_base: {base_url}/v1\n"
            "general_settings:\n"
            f"  master_key: {MASTER_KEY}\n"
        )
        env = {
            **os.environ,
            "DATABASE_URL": f"{PG}/{db}",
            "LITELLM_EXECUTED_BATCH_CONCURRENCY": str(concurrency),
        }
        log = open(Path(tmp) / "proxy.log", "wb")  # noqa: SIM115 - the child's
        proc = subprocess.Popen(
            [
                str(VENV / "bin" / "litellm"),
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            proxy = f"http://127.0.0.1:{port}"
            _wait_up(proxy, proc, Path(tmp) / "proxy.log")
            return _submit_and_collect(proxy, data)
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
            subprocess.run(["psql", PG + "/postgres", "-qc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"])


def _submit_and_collect(proxy: str, data: bytes) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {MASTER_KEY}"}
    with httpx.Client(base_url=proxy, headers=auth, timeout=600) as client:
        started = time.perf_counter()
        up = client.post(
            "/v1/files",
            headers={"x-litellm-model": MODEL},
            data={"purpose": "batch"},
            files={"file": ("batch.jsonl", data, "application/jsonl")},
        )
        up.raise_for_status()
        created = client.post(
            "/v1/batches",
            json={
                "input_file_id": up.json()["id"],
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        )
        created.raise_for_status()
        batch = created.json()
        while batch["status"] not in ("completed", "failed", "expired", "cancelled"):
            time.sleep(0.1)
            batch = client.get(f"/v1/batches/{batch['id']}").json()
        ok = 0
        if batch.get("output_file_id"):
            out = client.get(f"/v1/files/{batch['output_file_id']}/content")
            out.raise_for_status()
            ok = sum(
                1 for line in out.text.splitlines() if json.loads(line)["response"]["status_code"] == 200
            )
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "succeeded": ok, "mode": f"LiteLLM {PIN} proxy /v1/batches (PostgreSQL)"}


def _wait_up(proxy: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise PeerUnavailable(f"the LiteLLM proxy exited ({proc.returncode}): {' | '.join(tail)[-400:]}")
        try:
            if httpx.get(proxy + "/health/liveliness", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise PeerUnavailable(f"the LiteLLM proxy did not come up within {timeout:g}s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- runner mode: LiteLLM's per-line batch call, in process, no database ----------------------

_RUNNER = r"""
import asyncio, json, sys, time
import litellm
from litellm.proxy.batches_endpoints.litellm_executed_batches import BatchInputLine, parse_batch_input

base_url, path, concurrency, model = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
router = litellm.Router(model_list=[{"model_name": model, "litellm_params": {
    "model": "hosted_vllm/" + model, "api_base": base_url + "/v1"}}])

async def main():
    content = open(path, "rb").read()
    started = time.perf_counter()
    lines = parse_batch_input(content, "/v1/chat/completions")
    assert isinstance(lines, tuple), lines
    gate = asyncio.Semaphore(concurrency)

    async def one(line: BatchInputLine):
        async with gate:
            try:
                response = await router.acompletion(**{**line.body, "model": model, "disable_fallbacks": True,
                                                       "metadata": {"batch_id": "bench"}})
            except Exception as exc:
                return {"custom_id": line.custom_id, "response": None, "error": {"message": str(exc)}}
            body = response.model_dump()
            return {"custom_id": line.custom_id, "response": {"status_code": 200, "body": body}}

    rows = await asyncio.gather(*(one(line) for line in lines))
    output = "".join(json.dumps(row) + "\n" for row in rows)
    ok = sum(1 for row in rows if row["response"] is not None)
    print(json.dumps({"seconds": time.perf_counter() - started, "succeeded": ok, "bytes": len(output)}))

asyncio.run(main())
"""


def run_runner_batch(python: Path, base_url: str, data: bytes, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "batch.jsonl"
        path.write_bytes(data)
        done = subprocess.run(
            [str(python), "-c", _RUNNER, base_url, str(path), str(concurrency), MODEL],
            capture_output=True,
            text=True,
            env={**os.environ, "LITELLM_LOG": "ERROR"},
        )
    if done.returncode != 0:
        raise PeerUnavailable(f"LiteLLM's router run failed: {done.stderr.strip()[-400:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["mode"] = f"LiteLLM {PIN} Router, the batch runner's per-line call, in process, no proxy/DB"
    return result
