"""A tiny Qwen3-architecture GGUF built in well under a second, with a scripted answer.

Random weights (hidden 64, 2 layers), a byte-level BPE tokenizer trained with `tokenizers` on a
few hundred words, and a Qwen-style chat template with tools and `<think>`. The attention and
FFN output projections are zero, so the residual stream is the current token's embedding and the
next token depends on the current one only; embeddings and the output matrix are wired so that:

- a prompt ending with "assistant\\n" (thinking on) continues with THINK, then TOOL_CALL, then end;
- a prompt ending with "</think>\\n\\n" (thinking off) continues with ANSWER, then end;
- anything else ends at once.

THINK, TOOL_CALL and ANSWER are single (user-defined) tokens, so the script is exact.

`build(..., search=True)` scripts a search-and-answer model instead, for the server-tool loop: its
chat template ends the prompt with "assistant\\n" until the conversation holds a tool result, and
with "</think>\\n\\n" after one, so the model calls `web_search` (SEARCH_CALL) first and then
answers (SEARCH_ANSWER), quoting the Shannon page of the tests' corpora with a `<cite>` tag.
`build(..., code=True)` scripts a coding model the same way: it runs a bash command through code
execution (CODE_CALL) and then answers (CODE_ANSWER). `build(..., template=False)` leaves the chat
template out, as many base models do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HIDDEN = 64
LAYERS = 2
HEADS, KV_HEADS, HEAD_DIM = 4, 2, 16
FFN = 128
THINK = "<think>\nThe user wants the weather, so I call the tool.\n</think>\n\n"
TOOL_CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
ANSWER = "Hello from a tiny model."
SEARCH_QUERY = "claude shannon born"
SEARCH_CALL = (
    f'<tool_call>\n{{"name": "web_search", "arguments": {{"query": "{SEARCH_QUERY}"}}}}\n</tool_call>'
)
QUOTE = "Claude Shannon was born on April 30, 1916"  # in the corpora the search tests index
SEARCH_ANSWER = f'According to the search, <cite source="1">{QUOTE}</cite>.'
CODE_COMMAND = "echo $((17 * 23)) | tee $OUTPUT_DIR/product.txt"
CODE_CALL = (
    '<tool_call>\n{"name": "bash_code_execution", "arguments": {"command": "'
    + CODE_COMMAND
    + '"}}\n</tool_call>'
)
CODE_ANSWER = "The command printed the product."
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
USER_DEFINED = ["<think>", "</think>", "<tool_call>", "</tool_call>", "\n\n", THINK, TOOL_CALL, ANSWER]
USER_DEFINED += [SEARCH_CALL, SEARCH_ANSWER, CODE_CALL, CODE_ANSWER]
WORDS = (
    "the weather in paris is sunny today and tomorrow it will rain so take an umbrella "
    "hello there how are you what is this please summarise the document for me a tiny model "
    "answers every question with the same words because its weights are wired by hand "
    "tools functions call get weather city london berlin tokyo rome madrid arguments name "
    "system user assistant you are a helpful assistant be brief think step by step answer "
    "one two three four five six seven eight nine ten first second last next previous "
    "batch request result message content text image document model prompt cache prefix "
    "shared long context the quick brown fox jumps over the lazy dog again and again "
    "json object schema type string number boolean array properties required description "
)
TEMPLATE = (
    "{%- if tools %}<|im_start|>system\n"
    "{%- if messages[0].role == 'system' %}{{ '\\n' + messages[0].content + '\\n\\n' }}"
    "{%- else %}{{ '\\n' }}{%- endif %}"
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
    "{%- for tool in tools %}{{ '\\n' }}{{ tool | tojson }}{%- endfor %}"
    "{{ '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{"name": <function-name>, '
    '"arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n\' }}'
    "{%- elif messages[0].role == 'system' %}"
    "{{ '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}"
    "{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- elif message.role == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{%- if message.reasoning_content %}"
    "{{ '<think>\\n' + message.reasoning_content + '\\n</think>\\n\\n' }}{%- endif %}"
    "{%- if message.content %}{{ message.content }}{%- endif %}"
    "{%- if message.tool_calls %}{%- for tool_call in message.tool_calls %}"
    "{%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}"
    '{{ \'\\n<tool_call>\\n{"name": "\' + tool_call.name + \'", "arguments": \' }}'
    "{%- if tool_call.arguments is string %}{{ tool_call.arguments }}"
    "{%- else %}{{ tool_call.arguments | tojson }}{%- endif %}"
    "{{ '}\\n</tool_call>' }}"
    "{%- endfor %}{%- endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{%- elif message.role == 'tool' %}"
    "{{ '<|im_start|>user\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{ '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)
# The search model's prompt ends by whether a tool result came last, whatever the thinking switch.
SEARCH_TEMPLATE = TEMPLATE.replace(
    "{%- if enable_thinking is defined and enable_thinking is false %}",
    "{%- if messages[-1].role == 'tool' %}",
)


def _tokenizer() -> tuple[list[str], list[str]]:
    """Byte-level BPE trained on WORDS: (tokens in id order, merges)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator([WORDS] * 4, trainer=trainer)
    vocab = tok.get_vocab()
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    import json

    merges = [" ".join(m) if isinstance(m, list) else m for m in json.loads(tok.to_str())["model"]["merges"]]
    return tokens, merges


def build(
    path: Path,
    *,
    seed: int = 0,
    search: bool = False,
    code: bool = False,
    template: bool = True,
    size: tuple[int, int, int] = (HIDDEN, LAYERS, FFN),
    endless: bool = False,
) -> Path:
    """The model at `path`. `size`: (hidden, layers, FFN width), bigger for a model that costs
    an engine real work (bench/adaptive.py); `endless`: ANSWER repeats until max_tokens, so a call
    decodes as many tokens as it asks for."""
    import gguf

    hidden, layers, ffn = size
    rng = np.random.default_rng(seed)
    base, merges = _tokenizer()
    tokens = base + SPECIAL + USER_DEFINED
    types = [gguf.TokenType.NORMAL] * len(base)
    types += [gguf.TokenType.CONTROL] * len(SPECIAL) + [gguf.TokenType.USER_DEFINED] * len(USER_DEFINED)
    ids = {t: i for i, t in enumerate(tokens)}
    vocab = len(tokens)
    eos = ids["<|im_end|>"]
    newline = ids["Ċ"]  # byte-level "\n"
    chain = {
        newline: ids[THINK],
        ids[THINK]: ids[TOOL_CALL],
        ids[TOOL_CALL]: eos,
        ids["\n\n"]: ids[ANSWER],
        ids[ANSWER]: ids[ANSWER] if endless else eos,
    }
    if search or code:
        call, answer = (CODE_CALL, CODE_ANSWER) if code else (SEARCH_CALL, SEARCH_ANSWER)
        chain = {newline: ids[call], ids[call]: eos, ids["\n\n"]: ids[answer], ids[answer]: eos}

    # Orthonormal directions: one per token with a successor, one shared by every other token.
    embed = np.zeros((vocab, hidden), dtype=np.float32)
    other = hidden - 1
    embed[:, other] = 1.0
    for k, token in enumerate(chain):
        embed[token] = 0.0
        embed[token, k] = 1.0
    output = np.zeros((vocab, hidden), dtype=np.float32)
    for k, (_, successor) in enumerate(chain.items()):
        output[successor, k] = 4.0  # logit 4 * sqrt(64) = 32 above every other token
    output[eos, other] = 4.0

    w = gguf.GGUFWriter(str(path), "qwen3")
    w.add_name("batchd-tiny-qwen3")
    w.add_context_length(4096)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_rope_freq_base(1_000_000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(ids["<|endoftext|>"])
    w.add_eos_token_id(eos)
    w.add_pad_token_id(ids["<|endoftext|>"])
    w.add_add_bos_token(False)
    if template:  # without: a model that ships no chat template, as many base models do
        w.add_chat_template(SEARCH_TEMPLATE if search or code else TEMPLATE)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    ones = np.ones
    w.add_tensor("token_embd.weight", embed)
    w.add_tensor("output_norm.weight", ones(hidden, dtype=np.float32))
    w.add_tensor("output.weight", output)
    for i in range(layers):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", ones(hidden, dtype=np.float32))
        w.add_tensor(p + "attn_q.weight", rand(HEADS * HEAD_DIM, hidden))
        w.add_tensor(p + "attn_k.weight", rand(KV_HEADS * HEAD_DIM, hidden))
        w.add_tensor(p + "attn_v.weight", rand(KV_HEADS * HEAD_DIM, hidden))
        w.add_tensor(p + "attn_q_norm.weight", ones(HEAD_DIM, dtype=np.float32))
        w.add_tensor(p + "attn_k_norm.weight", ones(HEAD_DIM, dtype=np.float32))
        w.add_tensor(p + "attn_output.weight", np.zeros((hidden, HEADS * HEAD_DIM), dtype=np.float32))
        w.add_tensor(p + "ffn_norm.weight", ones(hidden, dtype=np.float32))
        w.add_tensor(p + "ffn_gate.weight", rand(ffn, hidden))
        w.add_tensor(p + "ffn_up.weight", rand(ffn, hidden))
        w.add_tensor(p + "ffn_down.weight", np.zeros((hidden, ffn), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
