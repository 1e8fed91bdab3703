"""A synchronous Python client of the inf-engine service (stdlib, httpx and httpx-sse only).

::

    from app.client import Client

    with Client("http://127.0.0.1:8000", api_key="ie_...") as client:
        client.push_graph("examples/graphs/extract-and-compare.json")
        job = client.submit("extract-and-compare", "examples/inputs-1000.jsonl")
        for event in client.events(job["id"]):
            print(event.id, event.kind, event.data)
        for item in client.results(job["id"]):
            print(item["index"], item["output"])

Webhook receivers check the ``Inf-Signature`` header with :func:`verify_webhook`::

    verify_webhook(
        secret, request.headers["Inf-Delivery"], raw_body, request.headers["Inf-Signature"]
    )  # True or False
"""

from app.client.api import DEFAULT_URL, Client
from app.client.errors import ClientError
from app.client.events import TERMINAL_EVENTS, Event
from app.signing import HEADER as WEBHOOK_SIGNATURE_HEADER
from app.signing import verify as verify_webhook

__all__ = [
    "DEFAULT_URL",
    "TERMINAL_EVENTS",
    "WEBHOOK_SIGNATURE_HEADER",
    "Client",
    "ClientError",
    "Event",
    "verify_webhook",
]
