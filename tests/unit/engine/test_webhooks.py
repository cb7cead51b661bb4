"""Webhook signing and payloads (engine/webhooks.py), pure parts."""

from __future__ import annotations

import base64

import orjson
import pytest

from batchd import models
from batchd.engine import webhooks
from batchd.store.base import WebhookDelivery
from batchd.tools.web_fetch import ssrf


def test_signature_matches_the_standard_webhooks_example() -> None:
    # The worked example of the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = webhooks.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_secrets_are_random_and_decode_to_24_bytes() -> None:
    one, two = webhooks.new_secret(), webhooks.new_secret()
    assert one != two and one.startswith("whsec_")
    assert len(base64.b64decode(one.removeprefix("whsec_"))) == webhooks.SECRET_BYTES


def test_payload_is_type_timestamp_and_the_rendered_batch() -> None:
    batch = models.Batch(
        "msgbatch_1", "w", models.ProcessingStatus.ENDED, models.RequestCounts(), 1.0, 2.0, 1.5
    )
    d = WebhookDelivery(
        "evt_1", "whep_1", 1, 1.5, "message_batch.ended", batch, 1.5, "https://x", "whsec_AA=="
    )
    body = orjson.loads(webhooks.payload(d, lambda b: {"id": b.id}))
    assert body == {
        "type": "message_batch.ended",
        "timestamp": models.rfc3339(1.5),
        "data": {"id": "msgbatch_1"},
    }


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://hooks.example/x", None),
        ("http://localhost:9/x", None),  # a name: judged when resolved
        ("http://127.0.0.1:9/x", "loopback"),
        ("http://0x7f.1/x", "loopback"),
        ("http://[::ffff:10.1.2.3]/x", "private"),
        ("gopher://hooks.example/", "http"),
        ("https:///nohost", "http"),
    ],
)
def test_check_url(url: str, problem: str | None) -> None:
    policy = ssrf.Policy()
    if problem is None:
        webhooks.check_url(url, policy)
    else:
        with pytest.raises(ValueError, match=problem):
            webhooks.check_url(url, policy)
    webhooks.check_url("http://127.0.0.1:9/x", ssrf.Policy(["127.0.0.1"]))  # allowed in config
