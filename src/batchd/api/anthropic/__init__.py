"""Anthropic's wire: Message Batches (batches.py, schemas.py), realtime Messages (messages.py),
Models (models.py), the `limit` of its lists (paging.py) and the OpenAPI document of them all
(openapi.py)."""
