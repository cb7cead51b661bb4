"""Web fetch (`web_fetch_20250910` and later): a URL in, its text (or PDF) as a document out.

`fetcher.Fetcher` fetches within the size, time and address bounds and converts the page
(`extract.py`); `ssrf.py` is the address policy it enforces on every connection; `context.py`
finds and compares URLs for the rule that the model fetches only those the conversation showed.
"""

from __future__ import annotations

from batchd.tools.web_fetch.fetcher import FetchedDocument, Fetcher

__all__ = ["FetchedDocument", "Fetcher"]
