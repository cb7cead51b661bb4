from __future__ import annotations

import base64

import pytest

from batchd import exceptions
from batchd.backends import pdf
from tests.unit.conftest import make_pdf


def test_pages_in_order() -> None:
    pages = pdf.extract_pages(make_pdf("Apples grow on trees.", "", "Bananas ripen."))
    assert pages == ("Apples grow on trees.", "", "Bananas ripen.")


def test_whitespace_in_base64_is_ignored() -> None:
    data = make_pdf("Wrapped lines.")
    wrapped = "\n".join(data[i : i + 76] for i in range(0, len(data), 76))
    assert pdf.extract_pages(wrapped) == ("Wrapped lines.",)


def test_results_are_cached() -> None:
    data = make_pdf("Cached once.")
    assert pdf.extract_pages(data) is pdf.extract_pages(data)
    assert pdf.extract_pages(make_pdf("Another.")) == ("Another.",)


def test_a_pdf_without_a_user_password_opens() -> None:
    assert pdf.extract_pages(make_pdf("Open.", user_password="")) == ("Open.",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("not base64 at all!", "not valid base64"),
        (base64.b64encode(b"hello").decode(), "not valid"),
        (base64.b64encode(b"%PDF-1.7 junk").decode(), "not valid"),
        (make_pdf("Secret.", user_password="secret"), "password protected"),
    ],
)
def test_unreadable_pdfs(data: str, message: str) -> None:
    with pytest.raises(exceptions.InvalidParams, match=message):
        pdf.extract_pages(data)
