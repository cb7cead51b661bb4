"""The two kinds of batch the dashboard shows side by side: Message Batches (Anthropic's wire) and
OpenAI batches (`batch_…`, api/openai/): an OpenAI batch is an engine batch plus its
`openai_batches` row (store/openai.py), which holds what the dashboard adds for it: endpoint,
model, input file, and the status OpenAI's API gives it (api/openai/objects.py).

An OpenAI batch that failed validation has no engine batch, so no requests and nothing to show:
the dashboard does not list it (`GET /v1/batches` does, with its errors).
"""

from __future__ import annotations

from typing import Any

from batchd import models
from batchd.api import services
from batchd.api.openai import objects, outputs
from batchd.store.openai import OpenAIBatchRow

MESSAGES = "Messages"


async def openai_row(svc: services.Services, workspace: str, batch_id: str) -> OpenAIBatchRow | None:
    """The workspace's OpenAI batch, its output and error files summed first if its engine batch
    has ended (outputs.close, as the API's first read after the end does), so the status shown is
    the one `GET /v1/batches/{id}` answers."""
    row = await svc.store.get_openai_batch(workspace, batch_id)
    if row is not None and objects.ended(row):
        await outputs.close(svc, row)
        row = await svc.store.get_openai_batch(workspace, batch_id)
    return row


def kind(row: OpenAIBatchRow | None) -> dict[str, Any]:
    """What the list and the batch page show of a batch's kind (`row`: its OpenAI row, if any)."""
    if row is None:
        return {"wire": "messages", "label": MESSAGES, "status": None}
    return {
        "wire": "openai",
        "label": f"OpenAI · {row.endpoint}",
        "status": objects.status(row),
        "endpoint": row.endpoint,
        "model": row.model,
        "input_file_id": row.input_file_id,
    }


async def kinds(svc: services.Services, workspace: str, batches: list[models.Batch]) -> dict[str, Any]:
    """By batch id, the kind of each batch listed (one read per OpenAI batch: a page holds 25)."""
    out: dict[str, Any] = {}
    for b in batches:
        row = await openai_row(svc, workspace, b.id) if models.is_openai_batch(b.id) else None
        out[b.id] = kind(row)
    return out
