"""A loopback Entropy Data marketplace: the API calls this product makes, answered from memory."""

from __future__ import annotations

import json
from datetime import date
from urllib.parse import parse_qs

from customer_activity_testing.http_server import Answer, RecordingServer, Request

CONSUMER = "entropydata-customer-activity"
PROVIDER, PROVIDER_PORT = "entropydata-postgres", "raw_v1"


class LoopbackMarketplace:
    """Documents PUT are kept and served back on GET; access agreements are listed per consumer data product."""

    def __init__(self, page_size: int = 50) -> None:
        self.documents: dict[str, object] = {}
        self.agreements: list[dict[str, object]] = []
        self.page_size = page_size
        self.server: RecordingServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None, "not serving"
        return self.server.url

    def agreement(
        self,
        status: str = "approved",
        *,
        active: bool = True,
        start: date | None = None,
        end: date | None = None,
        consumer: str = CONSUMER,
        provider: tuple[str, str] = (PROVIDER, PROVIDER_PORT),
    ) -> str:
        """An access agreement as Entropy Data's API returns it (the SDK's Access model); its id."""
        id_ = f"agreement-{len(self.agreements) + 1}"
        info: dict[str, object] = {"purpose": "customer activity", "status": status, "active": active}
        if start is not None:
            info["startDate"] = start.isoformat()
        if end is not None:
            info["endDate"] = end.isoformat()
        self.agreements.append(
            {
                "id": id_,
                "info": info,
                "provider": {"dataProductId": provider[0], "outputPortId": provider[1]},
                "consumer": {"dataProductId": consumer},
            }
        )
        return id_

    def __call__(self, request: Request) -> Answer:
        path, _, query = request.path.partition("?")
        parameters = {name: values[0] for name, values in parse_qs(query).items()}
        if request.method == "PUT":
            self.documents[path] = request.json()
            return Answer()
        if request.method == "POST":  # lineage events, test results: recorded by the server
            return Answer()
        if request.method == "GET" and path == "/api/access":
            consumer = parameters.get("consumerDataProductId")
            listed = [a for a in self.agreements if consumer in (None, a["consumer"]["dataProductId"])]  # type: ignore[index]
            start = int(parameters.get("p", "0")) * self.page_size
            # As the API pages: a Link header with rel="next" while more follow.
            more = {"Link": '<next>; rel="next"'} if len(listed) > start + self.page_size else {}
            return Answer(body=json.dumps(listed[start : start + self.page_size]), headers=more)
        if request.method == "GET" and path in self.documents:
            return Answer(body=json.dumps(self.documents[path]))
        return Answer(404, '{"detail": "not found"}')
