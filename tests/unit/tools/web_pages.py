"""The web fetch tests' site: pages of every kind, redirects, faults, served on loopback.

/page.html             an article with a <title>, navigation and a footer
/short.html            one line of text (trafilatura finds no main content)
/latin1.html           HTML in ISO-8859-1, declared in the Content-Type
/plain.txt             UTF-8 text with non-ASCII characters
/doc.pdf               a three-page PDF
/octet.pdf             the same PDF served as application/octet-stream
/huge.html             an endless HTML page, streamed until the client stops reading
/huge.pdf              a PDF with a Content-Length far over any test's bound
/slow                  headers after 30 s
/stall                 headers at once, then a body that never comes
/status/NNN            an empty answer with that status
/type?t=TYPE           a body with that Content-Type
/redirect?to=URL[&status=NNN]   a redirect to URL (301, 302, 303, 307, 308)
/chain/N               N redirects in a row, then /page.html
"""

from __future__ import annotations

import asyncio
import base64
import functools

from aiohttp import web

from tests.unit.conftest import make_pdf
from tests.unit.tools.loopback import Loopback

ARTICLE = (
    "Claude Shannon founded information theory in 1948 with his paper on the mathematical theory of "
    "communication, which defined the bit as the unit of information."
)
SECOND = "He also built a mechanical mouse that could learn its way through a maze."
PAGE = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Claude Shannon – Biography</title></head>
<body>
<nav><a href="/">Home</a> <a href="/about">About</a> <a href="/contact">Contact</a></nav>
<article><h1>Claude Shannon</h1><p>{ARTICLE}</p><p>{SECOND}</p>
<script>var tracking = "do not show";</script></article>
<footer>Copyright 2024 Example Pages. All rights reserved.</footer>
</body></html>"""
PDF_PAGES = ("First page about bits.", "Second page about mazes.", "Third page, the end.")


@functools.cache
def pdf_bytes() -> bytes:
    """The PDF, made once: fpdf stamps the time of making into it."""
    return base64.b64decode(make_pdf(*PDF_PAGES))


async def serve(request: web.Request) -> web.StreamResponse:
    path = request.path
    if path == "/page.html":
        return web.Response(text=PAGE, content_type="text/html")
    if path == "/short.html":
        return web.Response(text="<html><body><p>Tiny page.</p></body></html>", content_type="text/html")
    if path == "/latin1.html":
        body = "<html><head><title>Café</title></head><body><p>Crème brûlée.</p></body></html>"
        return web.Response(
            body=body.encode("latin-1"), headers={"content-type": "text/html; charset=iso-8859-1"}
        )
    if path == "/plain.txt":
        return web.Response(text="Grüße aus Köln — 東京 too.\nSecond line.", content_type="text/plain")
    if path == "/doc.pdf":
        return web.Response(body=pdf_bytes(), content_type="application/pdf")
    if path == "/octet.pdf":
        return web.Response(body=pdf_bytes(), content_type="application/octet-stream")
    if path == "/huge.html":
        return await _endless(request)
    if path == "/huge.pdf":
        response = web.StreamResponse(
            headers={"content-type": "application/pdf", "content-length": str(1 << 30)}
        )
        await response.prepare(request)
        await response.write(b"%PDF-1.7\n" + b"0" * 65536)
        return response
    if path == "/slow":
        await asyncio.sleep(30)
        return web.Response(text="late")
    if path == "/stall":
        response = web.StreamResponse(headers={"content-type": "text/html"})
        await response.prepare(request)
        await response.write(b"<html><body><p>Start")
        await asyncio.sleep(30)
        return response
    if path.startswith("/status/"):
        return web.Response(status=int(path.rsplit("/", 1)[1]), text="status page")
    if path == "/type":
        return web.Response(body=b"\x89PNG\r\n\x1a\n....", headers={"content-type": request.query["t"]})
    if path == "/redirect":
        status = int(request.query.get("status", "302"))
        return web.Response(status=status, headers={"location": request.query["to"]})
    if path.startswith("/chain/"):
        left = int(path.rsplit("/", 1)[1])
        return web.Response(
            status=302, headers={"location": f"/chain/{left - 1}" if left > 1 else "/page.html"}
        )
    return web.Response(status=404, text="not found")


async def _endless(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/html"})
    await response.prepare(request)
    await response.write(b"<html><head><title>Huge</title></head><body>")
    paragraph = b"<p>" + b"word " * 200 + b"</p>\n"
    try:
        while True:  # until the client hangs up: the test would time out if the fetcher never did
            await response.write(paragraph)
    except (ConnectionResetError, ConnectionError):
        pass
    return response


def site() -> Loopback:
    """The site, not started yet: `async with site() as server:`."""
    server = Loopback()
    server.handle = serve
    return server
