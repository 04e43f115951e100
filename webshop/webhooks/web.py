"""Admin webhook pages (``/admin/webhooks``, platform admins): the endpoint list, "Register endpoint",
one endpoint's page (edit, enable or disable, its signing secret, "Send test event", its delivery log)
and the delete question.

Every action is a plain form post answered by a 303 redirect (``hx-boost`` makes it an in-place swap
when JavaScript is on), or, when the service refuses it, the same page again with the reason beside
the form and the error's status (422, 409). Deleting asks first on a page of its own, so the question
works without JavaScript. The delivery log pages with plain links; with JavaScript they swap the log
alone (``HX-Target: webhook-deliveries``). The rules live in ``WebhookService``.
"""

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import MediaType, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery
from litestar.response import Template

from webshop.admin import ADMIN_PAGE_SIZE, AdminPages
from webshop.admin.pages import AdminRequest, flash_see_other
from webshop.api.schemas import PathId
from webshop.db.models import WebhookEndpoint
from webshop.deps import AuditDep, WebhooksDep
from webshop.errors import DomainError
from webshop.text import Line
from webshop.web.forms import FormFields, form_message, read_form
from webshop.web.responses import page_count, page_number, page_or_fragment
from webshop.webhooks.schemas import EVENT_NAMES

EVENT_LABELS = {
    "order.placed": "An order is placed",
    "order.paid": "An order is paid",
    "order.cancelled": "An order is cancelled",
    "order.refunded": "An order is refunded",
    "order.shipped": "An order ships (with its last part)",
    "refund.succeeded": "Money goes back to a customer (any refund, whole or in part)",
    "refund.failed": "The payment provider refuses a refund (the money has not gone back)",
    "product.created": "A product is created",
    "product.updated": "A product is changed",
    "product.deleted": "A product is deleted",
    "stock.low": "A variant's stock falls to its low-stock threshold",
}
"""What each event means, beside its checkbox (an event added later shows its name alone)."""


class WebhookForm(msgspec.Struct, kw_only=True):
    """The register and edit forms: the URL, the events ticked, an optional secret, a description."""

    url: Line = ""
    events: list[Line] = msgspec.field(default_factory=list)
    secret: Line = ""
    description: Line = ""

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> "WebhookForm":
        """The edit form filled in with ``endpoint`` (the secret field empty: it keeps the secret)."""
        return cls(url=endpoint.url, events=list(endpoint.events or []), description=endpoint.description)

    @classmethod
    def read(cls, fields: dict[str, Any]) -> "WebhookForm":
        """The posted form (one ticked box arrives as text, several as a list).

        Raises:
            InvalidForm: a field holds a control character.
        """
        values = dict(fields)
        if isinstance(values.get("events"), str):
            values["events"] = [values["events"]]
        return read_form(cls, values)

    def values(self, *, new: bool) -> dict[str, Any]:
        """The form as ``WebhookService`` input; an empty secret is generated (``new``) or kept (an edit)."""
        values: dict[str, Any] = {"url": self.url, "events": self.events, "description": self.description}
        if self.secret.strip() or new:
            values["secret"] = self.secret.strip() or None
        return values


def _form_page(template: str, form: WebhookForm, error: DomainError | None, **context: Any) -> Template:
    return Template(
        template,
        context={
            "form": form,
            "errors": error.field_errors if error else {},
            "message": form_message(error),
            "event_labels": {name: EVENT_LABELS.get(name, name) for name in EVENT_NAMES},
            **context,
        },
        status_code=error.status_code if error else 200,
    )


@dataclass
class EndpointPage:
    """The webhook handlers' ``endpoint_page`` dependency: one endpoint's admin page and the services it reads."""

    request: AdminRequest
    webhooks_service: WebhooksDep
    audit_service: AuditDep

    async def render(
        self,
        webhook_id: int,
        *,
        page: int = 1,
        form: WebhookForm | None = None,
        error: DomainError | None = None,
        test_message: str = "",
        status_code: int | None = None,
    ) -> Template:
        """The endpoint's admin page (or, for htmx aimed at ``#webhook-deliveries``, its delivery log).

        Args:
            webhook_id: The endpoint.
            page: The delivery log's page (``ADMIN_PAGE_SIZE`` a page, newest first).
            form: The edit form's values (default: the endpoint's); ``error`` why it was refused.
            test_message: Why "Send test event" was refused.
            status_code: The response status (default: the error's, else 200).

        Raises:
            NotFound: there is no such endpoint.
        """
        endpoint = await self.webhooks_service.get_endpoint(webhook_id)
        page = page_number(page)
        deliveries, total = await self.webhooks_service.deliveries(
            webhook_id, limit=ADMIN_PAGE_SIZE, offset=(page - 1) * ADMIN_PAGE_SIZE
        )
        return page_or_fragment(
            self.request,
            "admin/webhooks/detail.html",
            {"webhook-deliveries": "admin/webhooks/_deliveries.html"},
            {
                "endpoint": endpoint,
                "form": form or WebhookForm.of(endpoint),
                "errors": error.field_errors if error else {},
                "message": form_message(error),
                "event_labels": {name: EVENT_LABELS.get(name, name) for name in EVENT_NAMES},
                "test_message": test_message,
                "deliveries": deliveries,
                "total": total,
                "page": page,
                "pages": page_count(total, ADMIN_PAGE_SIZE),
                "audit_events": await self.audit_service.for_entity("webhook", [endpoint.id]),
            },
            status_code=status_code or (error.status_code if error else 200),
        )


EndpointPageDep = NamedDependency[EndpointPage]
"""The ``endpoint_page`` dependency (``EndpointPage``)."""


class AdminWebhookController(AdminPages):
    """Webhook endpoints for platform admins."""

    path = "/admin/webhooks"
    dependencies = {"endpoint_page": Provide(EndpointPage, sync_to_thread=False)}

    @get("", name="admin_webhooks", media_type=MediaType.HTML)
    async def index(self, webhooks_service: WebhooksDep) -> Template:
        """The registered endpoints."""
        return Template("admin/webhooks/index.html", context={"endpoints": await webhooks_service.list_endpoints()})

    @get("/new", name="admin_webhook_new", media_type=MediaType.HTML)
    async def new(self) -> Template:
        """The "Register endpoint" form."""
        return _form_page("admin/webhooks/new.html", WebhookForm(), None)

    @post("", name="admin_webhook_create", media_type=MediaType.HTML)
    async def create(self, request: AdminRequest, data: FormFields, webhooks_service: WebhooksDep) -> Any:
        """Register an endpoint; bad input shows the form again with the messages beside the fields."""
        form = WebhookForm()
        try:
            form = WebhookForm.read(data)
            endpoint = await webhooks_service.create_endpoint(request.user, form.values(new=True))
        except DomainError as exc:
            return _form_page("admin/webhooks/new.html", getattr(exc, "form", form), exc)
        message = f"Registered {endpoint.url}. Give its signing secret to the receiver."
        return flash_see_other(request, message, "admin_webhook", webhook_id=endpoint.id)

    @get("/{webhook_id:int}", name="admin_webhook", media_type=MediaType.HTML)
    async def detail(self, webhook_id: PathId, endpoint_page: EndpointPageDep, page: FromQuery[int] = 1) -> Template:
        """One endpoint: its form, status, secret, test button and delivery log (the log alone for htmx)."""
        return await endpoint_page.render(webhook_id, page=page)

    @post("/{webhook_id:int}", name="admin_webhook_update", media_type=MediaType.HTML)
    async def update(
        self, request: AdminRequest, webhook_id: PathId, data: FormFields, endpoint_page: EndpointPageDep
    ) -> Any:
        """Save the URL, events, description and (when one is entered) a new secret."""
        webhooks = endpoint_page.webhooks_service
        # No query before the service's: its address check (DNS) runs before the write transaction.
        form: WebhookForm | None = None
        try:
            form = WebhookForm.read(data)
            await webhooks.update_endpoint(request.user, webhook_id, form.values(new=False))
        except DomainError as exc:
            return await endpoint_page.render(webhook_id, form=getattr(exc, "form", form), error=exc)
        return flash_see_other(request, "Saved the endpoint.", "admin_webhook", webhook_id=webhook_id)

    @post("/{webhook_id:int}/enable", name="admin_webhook_enable", media_type=MediaType.HTML)
    async def enable(self, request: AdminRequest, webhook_id: PathId, webhooks_service: WebhooksDep) -> Any:
        """Let the endpoint receive its events again."""
        await webhooks_service.update_endpoint(request.user, webhook_id, {"is_active": True})
        message = "The endpoint is enabled: it receives its events."
        return flash_see_other(request, message, "admin_webhook", webhook_id=webhook_id)

    @post("/{webhook_id:int}/disable", name="admin_webhook_disable", media_type=MediaType.HTML)
    async def disable(self, request: AdminRequest, webhook_id: PathId, webhooks_service: WebhooksDep) -> Any:
        """Stop sending the endpoint events (those not yet sent fail with that reason)."""
        await webhooks_service.update_endpoint(request.user, webhook_id, {"is_active": False})
        message = "The endpoint is disabled: it receives nothing until you enable it."
        return flash_see_other(request, message, "admin_webhook", webhook_id=webhook_id)

    @post("/{webhook_id:int}/test", name="admin_webhook_test", media_type=MediaType.HTML)
    async def send_test(self, request: AdminRequest, webhook_id: PathId, endpoint_page: EndpointPageDep) -> Any:
        """Queue a ``webhook.test`` event to this endpoint; its delivery shows in the log."""
        try:
            delivery = await endpoint_page.webhooks_service.send_test(request.user, webhook_id)
        except DomainError as exc:
            return await endpoint_page.render(webhook_id, test_message=exc.detail, status_code=exc.status_code)
        message = f"Test event {delivery.event_id} queued: see its delivery below."
        return flash_see_other(request, message, "admin_webhook", webhook_id=webhook_id, fragment="deliveries")

    @post(
        "/{webhook_id:int}/deliveries/{delivery_id:int}/redeliver",
        name="admin_webhook_redeliver",
        media_type=MediaType.HTML,
    )
    async def redeliver(
        self, request: AdminRequest, webhook_id: PathId, delivery_id: PathId, endpoint_page: EndpointPageDep
    ) -> Any:
        """Send a delivered or failed event again; it shows in the log as pending."""
        try:
            delivery = await endpoint_page.webhooks_service.redeliver(request.user, webhook_id, delivery_id)
        except DomainError as exc:
            return await endpoint_page.render(webhook_id, test_message=exc.detail, status_code=exc.status_code)
        message = f"Event {delivery.event_id} queued again: see its delivery below."
        return flash_see_other(request, message, "admin_webhook", webhook_id=webhook_id, fragment="deliveries")

    @get("/{webhook_id:int}/delete", name="admin_webhook_delete_confirm", media_type=MediaType.HTML)
    async def confirm_delete(self, webhook_id: PathId, webhooks_service: WebhooksDep) -> Template:
        """Ask before deleting the endpoint (a page of its own: the question works without JavaScript)."""
        endpoint = await webhooks_service.get_endpoint(webhook_id)
        return Template("admin/webhooks/delete.html", context={"endpoint": endpoint})

    @post("/{webhook_id:int}/delete", name="admin_webhook_delete", media_type=MediaType.HTML)
    async def delete(self, request: AdminRequest, webhook_id: PathId, webhooks_service: WebhooksDep) -> Any:
        """Delete the endpoint and its delivery log."""
        endpoint = await webhooks_service.get_endpoint(webhook_id)
        await webhooks_service.delete_endpoint(request.user, webhook_id)
        return flash_see_other(request, f"Deleted the endpoint {endpoint.url}.", "admin_webhooks")
