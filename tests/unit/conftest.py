"""Shared seams of the unit tests: settings, the app over a stand-in store, scripted loopback
servers, PDF documents.

Fixtures are found by pytest; `app_on` and `make_pdf` are plain functions that test modules import
(parametrize lists are built before any fixture runs).
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from starlette.applications import Starlette

from batchd import config
from batchd.api.services import Services
from batchd.app import create_app
from tests.integration.backends_upstream import Scripted

SettingsFactory = Callable[..., config.Settings]
TEST_HOST = "testserver"  # the Host of Starlette's TestClient


@pytest.fixture
def settings_factory(tmp_path: Path) -> SettingsFactory:
    """`make(toml=None, **settings)`: settings as `batchd serve` loads them, from nothing else.

    Keyword arguments are settings given as environment variables (`concurrency="4"` is
    `BATCHD_CONCURRENCY=4`); `toml` is the text of a config file. The process's own environment
    is never read.
    """
    files = 0

    def make(toml: str | None = None, **settings: str) -> config.Settings:
        nonlocal files
        environ = {f"BATCHD_{name.upper()}": value for name, value in settings.items()}
        if toml is None:
            return config.load(environ=environ)
        files += 1
        path = tmp_path / f"batchd-{files}.toml"
        path.write_text(toml)
        return config.load(config_file=str(path), environ=environ)

    return make


def app_on(store: object, settings: config.Settings | None = None) -> Starlette:
    """The app over a stand-in store that has only what the test calls. Starlette's TestClient
    names the host `testserver`, which the app serves as one of its `allowed_hosts`."""
    settings = settings or config.Settings()
    settings = dataclasses.replace(settings, allowed_hosts=(*settings.allowed_hosts, TEST_HOST))
    return create_app(Services(settings=settings, store=store))  # type: ignore[arg-type]


@pytest.fixture
async def scripted() -> AsyncIterator[Scripted]:
    """Loopback servers scripted per connection, closed after the test."""
    servers = Scripted()
    yield servers
    servers.close()


def make_pdf(*pages: str, user_password: str | None = None) -> str:
    """A base64 PDF with one page per text (an empty text is a blank page), encrypted with RC4
    when `user_password` is given."""
    # Imported here: fpdf takes half a second to import, and only the PDF tests pay for it.
    from fpdf import FPDF
    from fpdf.enums import EncryptionMethod

    doc = FPDF()
    doc.set_font("helvetica", size=12)
    for text in pages:
        doc.add_page()
        if text:
            doc.cell(text=text)
    if user_password is not None:
        doc.set_encryption(
            owner_password="owner",
            user_password=user_password,
            encryption_method=EncryptionMethod.RC4,
        )
    return base64.b64encode(bytes(doc.output())).decode()
