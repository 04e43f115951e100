"""Webhook routes of the JSON API: platform admins register endpoints, read their delivery logs and
send test events (``/api/webhooks``).

Thin: every rule is ``webshop.webhooks.service.WebhookService``'s, the same as for the admin pages.
Every route needs an admin's bearer token (the ``api_admin`` guard: no token 401, a customer 403); an
unknown endpoint id is 404. A body that breaks the schema (a URL that is not http or https, an unknown
event name: the message lists the known ones) is 400; a rule the schema cannot state (production: a
host that resolves to a private address) is 422. The signing secret is in every answer: only admins
reach these routes, and they need it to set up receivers.
"""

from litestar import delete, get, patch, post
from litestar.params import JSONBody

from webshop.api.controllers import AdminApiController
from webshop.api.responses import created_at, problems
from webshop.api.schemas import IdCursor, PageLimit, PathId, keyset_page
from webshop.deps import UserRequest, WebhooksDep
from webshop.webhooks.schemas import (
    DeliveryOut,
    DeliveryPage,
    WebhookOut,
    WebhookPatch,
    WebhookWrite,
    delivery_out,
    webhook_out,
)


class WebhookApiController(AdminApiController):
    """Outbound webhook endpoints and their deliveries (admins only)."""

    path = "/api/webhooks"
    tags = ["webhooks"]

    @post("", operation_id="createWebhook", **created_at("/api/webhooks/{id}"), responses=problems(400, 401, 403, 422))
    async def create_webhook(
        self, request: UserRequest, data: JSONBody[WebhookWrite], webhooks_service: WebhooksDep
    ) -> WebhookOut:
        """Register an endpoint for the events named; a secret is generated when none is given."""
        return webhook_out(await webhooks_service.create_endpoint(request.user, data))

    @get("", operation_id="listWebhooks", responses=problems(400, 401, 403))
    async def list_webhooks(self, webhooks_service: WebhooksDep) -> list[WebhookOut]:
        """Every endpoint, oldest first."""
        return [webhook_out(endpoint) for endpoint in await webhooks_service.list_endpoints()]

    @get("/{webhook_id:int}", operation_id="getWebhook", responses=problems(400, 401, 403, 404))
    async def get_webhook(self, webhook_id: PathId, webhooks_service: WebhooksDep) -> WebhookOut:
        """One endpoint."""
        return webhook_out(await webhooks_service.get_endpoint(webhook_id))

    @patch("/{webhook_id:int}", operation_id="updateWebhook", responses=problems(400, 401, 403, 404, 422))
    async def update_webhook(
        self, request: UserRequest, webhook_id: PathId, data: JSONBody[WebhookPatch], webhooks_service: WebhooksDep
    ) -> WebhookOut:
        """Change the fields sent: ``is_active`` enables or disables it, a ``secret`` replaces the old one."""
        return webhook_out(await webhooks_service.update_endpoint(request.user, webhook_id, data))

    @delete("/{webhook_id:int}", operation_id="deleteWebhook", responses=problems(400, 401, 403, 404))
    async def delete_webhook(self, request: UserRequest, webhook_id: PathId, webhooks_service: WebhooksDep) -> None:
        """Delete an endpoint and its delivery log (deliveries not yet sent are dropped)."""
        await webhooks_service.delete_endpoint(request.user, webhook_id)

    @get(
        "/{webhook_id:int}/deliveries",
        operation_id="listWebhookDeliveries",
        responses=problems(400, 401, 403, 404),
    )
    async def list_deliveries(
        self, webhook_id: PathId, webhooks_service: WebhooksDep, cursor: IdCursor = None, limit: PageLimit = 20
    ) -> DeliveryPage:
        """The endpoint's deliveries, newest first: status, attempts, the last answer's status and error."""
        rows, _ = await webhooks_service.deliveries(
            webhook_id, limit=limit + 1, before_id=int(cursor) if cursor else None
        )
        page, next_cursor = keyset_page(rows, limit)
        return DeliveryPage(items=[delivery_out(row) for row in page], next_cursor=next_cursor)

    @post(
        "/{webhook_id:int}/test",
        operation_id="sendWebhookTest",
        status_code=202,
        responses=problems(400, 401, 403, 404, 409),
    )
    async def send_test(self, request: UserRequest, webhook_id: PathId, webhooks_service: WebhooksDep) -> DeliveryOut:
        """Queue a ``webhook.test`` event to this endpoint only (a disabled endpoint is 409); follow it in
        the deliveries."""
        return delivery_out(await webhooks_service.send_test(request.user, webhook_id))

    @post(
        "/{webhook_id:int}/deliveries/{delivery_id:int}/redeliver",
        operation_id="redeliverWebhookDelivery",
        status_code=202,
        responses=problems(400, 401, 403, 404, 409),
    )
    async def redeliver(
        self, request: UserRequest, webhook_id: PathId, delivery_id: PathId, webhooks_service: WebhooksDep
    ) -> DeliveryOut:
        """Send a delivered or failed event again, with a new round of attempts: the same event ``id``
        and body, so a receiver that keeps the ids it handled takes it once (409 while it is still to be
        sent, or when the endpoint is disabled)."""
        return delivery_out(await webhooks_service.redeliver(request.user, webhook_id, delivery_id))
