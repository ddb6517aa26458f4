"""Admin: see and revoke passkeys, read the audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from . import flows
from .models import AuthEvent, Credential

if TYPE_CHECKING:
    CredentialModelAdmin = admin.ModelAdmin[Credential]
    AuthEventModelAdmin = admin.ModelAdmin[AuthEvent]
else:
    CredentialModelAdmin = AuthEventModelAdmin = admin.ModelAdmin


@admin.register(Credential)
class CredentialAdmin(CredentialModelAdmin):
    """Passkeys, with a revoke action."""

    list_display = ("__str__", "user", "created_at", "last_used_at", "backup_state", "revoked_at")
    list_filter = ("backup_eligible", "backup_state", "attestation_format", "revoked_at")
    search_fields = ("name", "credential_id_sha256", "aaguid")
    # Only the name is editable (security rule 10): the owner and every cryptographic field are
    # fixed at registration. An editable ``user`` let staff with the change permission move
    # their own passkey to another account and sign in as it. Raw bytes are not shown at all.
    readonly_fields = (
        "user",
        "credential_id_sha256",
        "sign_count",
        "transports",
        "aaguid",
        "backup_eligible",
        "backup_state",
        "uv_initialized",
        "attestation_format",
        "created_at",
        "last_used_at",
        "clone_warning_at",
        "revoked_at",
        "revoked_by",
        "revoke_reason",
    )
    exclude = ("credential_id", "public_key", "user_handle")
    actions = ["revoke_selected"]

    @admin.action(description=_("Revoke selected passkeys"))
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        # Through the flow, so that the admin's revocation is audited and signalled like the
        # user's own, and ends the sessions the passkey established.
        count = sum(
            flows.revoke(credential, by=request.user, reason="revoked in admin", request=request)
            for credential in queryset.select_related("user")
        )
        self.message_user(request, _("%d passkeys revoked.") % count, messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuthEvent)
class AuthEventAdmin(AuthEventModelAdmin):
    """The audit trail, read-only."""

    list_display = ("created_at", "event_type", "success", "reason_code", "user", "ip_address")
    list_filter = ("event_type", "success", "reason_code")
    date_hierarchy = "created_at"
    raw_id_fields = ("user", "credential")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
