"""A GGUF that ships no chat template (tiny_gguf.build(template=False)), on real llama.cpp: batchd
warns at start, and `gguf_chat_template` gives it one, by llama.cpp name or as a Jinja file.

The tiny model continues a prompt ending with "assistant\\n" (ChatML's) with its `<think>` script
and a prompt ending with "\\n\\n" with ANSWER, so the template in use shows in the answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("xllamacpp", reason="the llamacpp tests need the xllamacpp wheel")
pytest.importorskip("gguf", reason="building the tiny model needs the gguf package")
pytest.importorskip("tokenizers", reason="building the tiny model needs the tokenizers package")

from batchd import exceptions
from batchd.backends import gguf as gguf_file
from batchd.backends.llamacpp import load_server
from tests.acceptance import tiny_gguf
from tests.acceptance.conftest import make_client
from tests.acceptance.server import ServerProcess

# A Jinja template of the file kind: each turn "[role] text", the prompt ending with a blank line.
JINJA = (
    "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant]\n\n{% endif %}"
)


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_gguf.build(tmp_path_factory.mktemp("gguf") / "bare.gguf", template=False)


# Each llama.cpp server runs in a child process that prints what it was asked and leaves with
# os._exit: an in-process server's destructor can hang a test session (seen after several servers
# in one pytest process), and a child's cannot.
CHILD = """
import json, logging, os, sys, urllib.request
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
from batchd import exceptions
from batchd.backends.llamacpp import load_server
try:
    server = load_server(sys.argv[1], parallel=1, ctx=512, threads=1, template=sys.argv[2])
except exceptions.ConfigError as exc:
    print(json.dumps({"error": exc.message}), flush=True)
    os._exit(0)
root = str(server.listening_address).rstrip("/")
body = json.dumps({"messages": [{"role": "user", "content": "hello"}]}).encode()
request = urllib.request.Request(root + "/apply-template", body, {"content-type": "application/json"})
with urllib.request.urlopen(request, timeout=10) as answer:
    print(json.dumps({"prompt": json.load(answer)["prompt"]}), flush=True)
os._exit(0)
"""


def serve(gguf: Path, template: str = "") -> tuple[dict[str, str], str]:
    """(what the child printed, its log) for llama.cpp on `gguf` with chat `template`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(gguf), template],
        capture_output=True, text=True, timeout=120, env=env, check=True,
    )  # fmt: skip
    found: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found, done.stderr


def test_the_gguf_header_tells_whether_a_template_ships(bare: Path, tmp_path: Path) -> None:
    full = tiny_gguf.build(tmp_path / "full.gguf")
    assert gguf_file.has_chat_template(full) and not gguf_file.has_chat_template(bare)
    assert gguf_file.metadata_value(full, "general.name") == "batchd-tiny-qwen3"
    (tmp_path / "not.gguf").write_bytes(b"nope" * 10)
    with pytest.raises(exceptions.ConfigError, match="not a GGUF file"):
        gguf_file.has_chat_template(tmp_path / "not.gguf")


def test_no_template_warns_and_gets_chatml(bare: Path) -> None:
    found, log = serve(bare)
    assert "has no chat template" in log
    assert found["prompt"] == "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"


def test_a_built_in_name_or_a_jinja_file_is_used(bare: Path, tmp_path: Path) -> None:
    found, log = serve(bare, "llama3")
    assert "has no chat template" not in log  # a template was given: nothing to warn about
    assert found["prompt"].startswith("<|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|>")
    jinja = tmp_path / "turns.jinja"
    jinja.write_text(JINJA)
    found, _ = serve(bare, str(jinja))
    assert found["prompt"] == "[user] hello\n[assistant]\n\n"


def test_an_unknown_name_or_a_missing_file_stops_the_start(bare: Path, tmp_path: Path) -> None:
    found, _ = serve(bare, "no-such-template")
    assert "no built-in template named 'no-such-template'" in found["error"]
    with pytest.raises(exceptions.ConfigError, match="is not a file"):
        load_server(str(bare), parallel=1, ctx=512, threads=1, template=str(tmp_path / "gone.jinja"))


def test_serve_gguf_with_a_chat_template_answers_as_the_template_prompts(bare: Path, tmp_path: Path) -> None:
    """End to end: `batchd serve --gguf` on the bare model. With its Jinja template the prompt ends
    with a blank line and the model answers ANSWER; ChatML would have made it think instead."""
    jinja = tmp_path / "turns.jinja"
    jinja.write_text(JINJA)
    env = {"BATCHD_GGUF": str(bare), "BATCHD_GGUF_PARALLEL": "1", "BATCHD_GGUF_CTX": "512"}
    env["BATCHD_GGUF_CHAT_TEMPLATE"] = str(jinja)
    srv = ServerProcess(tmp_path / "srv", env).start()
    try:
        client = make_client(srv.base_url)
        message = client.messages.create(
            model="tiny", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
        )
        assert [b.text for b in message.content if b.type == "text"] == [tiny_gguf.ANSWER]
        assert "has no chat template" not in srv.log()
    finally:
        srv.stop()
