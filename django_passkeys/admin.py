"""Admin: see and revoke passkeys, read the audit trail, approve assisted recoveries.

Also what a site adds to its own ``UserAdmin`` (:class:`PasskeyUserAdminMixin`) and the opt-in
passkey sign-in on the admin's login page (``PASSKEYS_ADMIN_LOGIN``). See ``docs/admin.rst``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from . import aaguids, flows, user_agents
from .conf import conf
from .errors import PasskeyError
from .models import AuthEvent, Credential, RecoveryRequest

if TYPE_CHECKING:
    CredentialModelAdmin = admin.ModelAdmin[Credential]
    AuthEventModelAdmin = admin.ModelAdmin[AuthEvent]
    RecoveryRequestModelAdmin = admin.ModelAdmin[RecoveryRequest]
    CredentialInline = admin.TabularInline[Credential, Any]
else:
    CredentialModelAdmin = AuthEventModelAdmin = RecoveryRequestModelAdmin = admin.ModelAdmin
    CredentialInline = admin.TabularInline

#: The permission the revoke action and page need (``Credential.Meta.permissions``).
REVOKE_PERMISSION = "django_passkeys.revoke_credential"
#: "Last used: older than" this, in the credential list's filter.
STALE_AFTER = timedelta(days=90)


def _user_search_fields() -> list[str]:
    """Lookups from a credential to its owner's username and e-mail, whatever the user model."""
    user_model = get_user_model()
    names = [user_model.USERNAME_FIELD, user_model.get_email_field_name()]
    fields = []
    for name in dict.fromkeys(names):
        try:
            user_model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        fields.append(f"user__{name}")
    return fields


def _provider_name(aaguid: str) -> str:
    provider = aaguids.provider_for(aaguid)
    return provider.name if provider is not None else ""


# ---------------------------------------------------------------------------------------------
# Credential list filters: each costs at most one query, whatever the list's length
# ---------------------------------------------------------------------------------------------


class StatusFilter(admin.SimpleListFilter):
    """Active or revoked."""

    title = _("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("active", _("Active")), ("revoked", _("Revoked"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("active", "revoked"):
            return queryset.filter(revoked_at__isnull=self.value() == "active")
        return queryset


class ProviderFilter(admin.SimpleListFilter):
    """The providers of the stored passkeys, by name (one name may have several AAGUIDs)."""

    title = _("provider")
    parameter_name = "provider"
    UNKNOWN = "-"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        # One query for the AAGUIDs in use; names come from the list in memory. Kept for
        # queryset(), which the same request calls on this instance.
        stored = Credential.objects.order_by().values_list("aaguid", flat=True).distinct()
        self.by_name: dict[str, list[str]] = {}
        for aaguid in stored:
            self.by_name.setdefault(_provider_name(aaguid) or self.UNKNOWN, []).append(aaguid)
        names = sorted(name for name in self.by_name if name != self.UNKNOWN)
        choices: list[tuple[str, Any]] = [(name, name) for name in names]
        if self.UNKNOWN in self.by_name:
            choices.append((self.UNKNOWN, _("Unknown provider")))
        return choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(aaguid__in=self.by_name.get(value, []))


class BackupFilter(admin.SimpleListFilter):
    """Synced to a provider, or bound to one device (WebAuthn L3 §6.1.3, the BE and BS flags)."""

    title = _("backup")
    parameter_name = "backup"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("synced", _("Synced (backed up)")),
            ("eligible", _("Can be synced, not backed up")),
            ("device", _("This device only")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        conditions = {
            "synced": Q(backup_state=True),
            "eligible": Q(backup_eligible=True, backup_state=False),
            "device": Q(backup_eligible=False),
        }
        condition = conditions.get(self.value() or "")
        return queryset.filter(condition) if condition is not None else queryset


class LastUsedFilter(admin.SimpleListFilter):
    """Never used, used within 90 days, or not for longer: passkeys to ask about or clean up."""

    title = _("last used")
    parameter_name = "used"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("never", _("Never")),
            ("recent", _("In the last 90 days")),
            ("stale", _("More than 90 days ago")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        cutoff = timezone.now() - STALE_AFTER
        conditions = {
            "never": Q(last_used_at__isnull=True),
            "recent": Q(last_used_at__gte=cutoff),
            "stale": Q(last_used_at__lt=cutoff),
        }
        condition = conditions.get(self.value() or "")
        return queryset.filter(condition) if condition is not None else queryset


class RevokeForm(forms.Form):
    """Why a passkey is revoked: kept on the credential and in the admin's log."""

    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        help_text=_("Kept with the passkey and in the admin's history; the owner is notified."),
    )

    def clean_reason(self) -> str:
        reason = str(self.cleaned_data["reason"])
        # Log-safe, like every name and reason this app stores.
        if any(not ch.isprintable() for ch in reason):
            raise forms.ValidationError(_("Use text without control characters."))
        return reason


class CredentialColumns:
    """Columns that the credential list and the user page's inline show alike."""

    @admin.display(description=_("provider"))
    def provider(self, credential: Credential) -> str:
        return _provider_name(credential.aaguid) or "—"

    @admin.display(description=_("status"), ordering="revoked_at")
    def status(self, credential: Credential) -> str:
        return gettext("Active") if credential.revoked_at is None else gettext("Revoked")


@admin.register(Credential)
class CredentialAdmin(CredentialColumns, CredentialModelAdmin):
    """Passkeys: whose, from which provider, used when; found by owner; revoked with a reason.

    The list costs the same few queries for 1 or 10 000 passkeys: the owner is joined, the
    provider named from the AAGUID list in memory, and each filter asks at most one query.
    """

    list_display = (
        "__str__",
        "user",
        "provider",
        "status",
        "backup_state",
        "created_at",
        "last_used_at",
    )
    list_filter = (StatusFilter, ProviderFilter, BackupFilter, LastUsedFilter, "attestation_format")
    list_select_related = ("user",)
    #: With the owner's username and e-mail address (see get_search_fields).
    search_fields = ("name", "credential_id_sha256", "aaguid")
    # Only the name is editable (security rule 10): the owner and every cryptographic field are
    # fixed at registration. An editable ``user`` let staff with the change permission move
    # their own passkey to another account and sign in as it. Raw bytes are not shown at all.
    readonly_fields = (
        "user",
        "provider",
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
    #: The confirmation page that asks for the reason, for one passkey or a selection.
    revoke_template = "admin/django_passkeys/credential/revoke.html"

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return [*self.search_fields, *_user_search_fields()]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        """Revoking needs its own permission: renaming (change) does not lock anyone out."""
        return request.user.has_perm(REVOKE_PERMISSION)

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_revoke"
        revoke = path(
            "<path:object_id>/revoke/", self.admin_site.admin_view(self.revoke_view), name=name
        )
        return [revoke, *super().get_urls()]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra = {
            **(extra_context or {}),
            "has_revoke_permission": self.has_revoke_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra)

    @admin.action(description=_("Revoke selected passkeys…"), permissions=["revoke"])
    def revoke_selected(
        self, request: HttpRequest, queryset: QuerySet[Credential]
    ) -> TemplateResponse | None:
        credentials = list(queryset.filter(revoked_at__isnull=True).select_related("user"))
        if not credentials:
            self.message_user(request, _("None of the selected passkeys is active."), messages.INFO)
            return None
        return self._revoke(request, credentials, selection=True)

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET asks for the reason to revoke one passkey; POST revokes it."""
        if not self.has_revoke_permission(request):
            raise PermissionDenied
        credential = self.get_object(request, unquote(object_id))
        if credential is None:
            raise Http404
        change_url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[credential.pk],
            current_app=self.admin_site.name,
        )
        if credential.revoked_at is not None:
            self.message_user(request, _("This passkey is already revoked."), messages.INFO)
            return HttpResponseRedirect(change_url)
        return self._revoke(request, [credential], selection=False) or HttpResponseRedirect(
            change_url
        )

    def _revoke(
        self, request: HttpRequest, credentials: list[Credential], *, selection: bool
    ) -> TemplateResponse | None:
        """Revoke ``credentials`` once the confirmation form carries a reason, else show it."""
        form = RevokeForm(request.POST if "reason" in request.POST else None)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": _("Revoke passkeys") if selection else _("Revoke passkey"),
                "opts": self.opts,
                "credentials": credentials,
                "form": form,
                "selection": selection,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, self.revoke_template, context)
        reason = form.cleaned_data["reason"]
        revoked = 0
        for credential in credentials:
            # Through the flow, as when the owner removes it: audited, signalled, the sessions
            # it established ended, the owner notified (DESIGN security rule 9).
            if flows.revoke(credential, by=request.user, reason=reason, request=request):
                revoked += 1
                self.log_change(request, credential, f"Revoked: {reason}")
        text = ngettext("%(count)d passkey revoked.", "%(count)d passkeys revoked.", revoked)
        self.message_user(request, text % {"count": revoked}, messages.SUCCESS)
        return None


@admin.register(AuthEvent)
class AuthEventAdmin(AuthEventModelAdmin):
    """The audit trail, read-only: nobody adds, edits or deletes an event here.

    Old events go with ``passkeys_cleanup`` (``PASSKEYS_EVENT_RETENTION_DAYS``).
    """

    list_display = (
        "created_at",
        "event_type",
        "success",
        "reason_code",
        "user",
        "credential",
        "ip_address",
        "browser",
    )
    list_filter = ("event_type", "success", "reason_code", "created_at")
    # The user and the passkey are nullable: Django's automatic select_related() skips them.
    list_select_related = ("user", "credential")
    date_hierarchy = "created_at"
    search_fields = ("reason_code", "ip_address")
    raw_id_fields = ("user", "credential")

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return [*self.search_fields, *_user_search_fields()]

    @admin.display(description=_("browser"))
    def browser(self, event: AuthEvent) -> str:
        return user_agents.label(event.user_agent, max_length=40)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# ---------------------------------------------------------------------------------------------
# On a site's own user admin: the user's passkeys, second factors and recent events
# ---------------------------------------------------------------------------------------------


class PasskeyInline(CredentialColumns, CredentialInline):
    """The user's passkeys, read-only; each links to its own page, where it can be revoked."""

    model = Credential
    fk_name = "user"  # not ``revoked_by``
    fields = ("name", "provider", "status", "backup_state", "created_at", "last_used_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = _("passkeys")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


if TYPE_CHECKING:
    _UserAdminBase = admin.ModelAdmin[Any]
else:
    _UserAdminBase = object


class PasskeyUserAdminMixin(_UserAdminBase):
    """Add to a site's ``UserAdmin``: the user's passkeys, second factors and latest events.

    ::

        from django_passkeys.admin import PasskeyUserAdminMixin

        class UserAdmin(PasskeyUserAdminMixin, BaseUserAdmin): ...

    The change page gains the passkeys (an inline, read-only, each linking to its page, where
    it is revoked) and a fieldset with the second factors (authenticator app, recovery codes)
    and the latest authentication events, linking to all of them. Nothing of it is editable.
    """

    #: How many of the user's latest authentication events the page lists.
    passkeys_event_count = 10
    passkeys_fieldset = _("Passkeys and second factors")
    _passkeys_fields = ("passkeys_second_factors", "passkeys_recent_events")

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        inlines = list(super().get_inlines(request, obj))
        return [*inlines, PasskeyInline] if obj is not None else inlines

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None:  # the add page
            return fieldsets
        return [*fieldsets, (self.passkeys_fieldset, {"fields": self._passkeys_fields})]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, *self._passkeys_fields) if obj is not None else fields

    @admin.display(description=_("Second factors"))
    def passkeys_second_factors(self, user: Any) -> SafeString:
        """The authenticator app and the recovery codes: set up or not, since when."""
        totp = flows.totp_state(user)
        codes = flows.recovery_codes_state(user)
        if totp.enabled:
            app = gettext("set up on %(date)s") % {"date": _date(totp.created_at)}
        elif totp.status == "pending":
            app = gettext("set up started, never confirmed with a code")
        else:
            app = gettext("none")
        if codes.enabled:
            recovery = ngettext(
                "%(count)d unused, generated on %(date)s",
                "%(count)d unused, generated on %(date)s",
                codes.remaining,
            ) % {
                "count": codes.remaining,
                "date": _date(codes.created_at),
            }
        else:
            recovery = gettext("none")
        rows = [(gettext("Authenticator app"), app), (gettext("Recovery codes"), recovery)]
        return format_html(
            '<ul class="passkeys-factors">{}</ul>',
            format_html_join("", "<li><strong>{}</strong>: {}</li>", rows),
        )

    @admin.display(description=_("Latest authentication events"))
    def passkeys_recent_events(self, user: Any) -> SafeString:
        """The user's latest events: when, what, the outcome, the passkey, the browser."""
        events = list(
            AuthEvent.objects.filter(user_id=user.pk)
            .select_related("credential")
            .order_by("-created_at")[: self.passkeys_event_count]
        )
        if not events:
            return format_html("{}", gettext("None yet."))
        rows = (
            (
                _date(event.created_at, "DATETIME_FORMAT"),
                event.get_event_type_display(),
                gettext("ok") if event.success else event.reason_code,
                str(event.credential) if event.credential else "",
                event.ip_address or "",
                user_agents.label(event.user_agent, max_length=40),
            )
            for event in events
        )
        table = format_html(
            '<table class="passkeys-events"><tbody>{}</tbody></table>',
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                rows,
            ),
        )
        try:
            everything = reverse(
                "admin:django_passkeys_authevent_changelist", current_app=self.admin_site.name
            )
        except NoReverseMatch:  # a site without the AuthEvent admin
            return table
        return format_html(
            '{}<p><a href="{}?user={}">{}</a></p>',
            table,
            everything,
            user.pk,
            gettext("All events"),
        )


def _date(value: Any, format_name: str = "DATE_FORMAT") -> str:
    return date_format(timezone.localtime(value), format_name) if value else "—"


# ---------------------------------------------------------------------------------------------
# Passkey sign-in on the admin's login page (PASSKEYS_ADMIN_LOGIN)
# ---------------------------------------------------------------------------------------------

#: Django's admin sign-in page, plus a "Use passkey" button when ``PASSKEYS_ADMIN_LOGIN`` is on.
ADMIN_LOGIN_TEMPLATE = "admin/django_passkeys/login.html"


class PasskeyAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's sign-in form; with ``PASSKEYS_ADMIN_LOGIN``, its username field also offers
    the browser's passkeys (autofill: conditional mediation, WebAuthn L3 §5.1.4)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if conf.PASSKEYS_ADMIN_LOGIN:
            self.fields["username"].widget.attrs["autocomplete"] = "username webauthn"


def use_passkey_admin_login(site: admin.AdminSite) -> None:
    """Give ``site``'s sign-in page passkey sign-in, shown while ``PASSKEYS_ADMIN_LOGIN`` is on.

    Done for ``admin.site`` when this module loads. A login template or form that the site
    set itself is kept: extend :data:`ADMIN_LOGIN_TEMPLATE` and
    :class:`PasskeyAdminAuthenticationForm` to combine them.
    """
    if site.login_template is None:
        site.login_template = ADMIN_LOGIN_TEMPLATE
    if site.login_form is None:
        site.login_form = PasskeyAdminAuthenticationForm


use_passkey_admin_login(admin.site)


@admin.register(RecoveryRequest)
class RecoveryRequestAdmin(RecoveryRequestModelAdmin):
    """Account recoveries, read-only, with the two steps of an assisted recovery.

    For a user with no second factor: once their link is opened, staff *start* an assisted
    recovery (the user's browser then shows a code and waits), check who the person is their own
    way, and *approve* with the code the person reads out. Both go through the recovery flow:
    audited, and recorded in the admin's log with who did it (``approved_by`` too).
    """

    list_display = ("__str__", "user", "state", "factor", "created_at", "expires_at", "approved_by")
    list_filter = ("state", "factor")
    date_hierarchy = "created_at"
    raw_id_fields = ("user",)
    # Token and code digests are never shown; everything else is read-only.
    readonly_fields = (
        "user",
        "state",
        "factor",
        "factor_attempts",
        "created_at",
        "expires_at",
        "opened_at",
        "used_at",
        "approved_by",
        "approved_at",
        "requesting_ip",
        "opening_ip",
        "opening_user_agent",
    )
    exclude = ("token_sha256", "session_binding", "approval_code_sha256")
    actions = ["start_assisted_recovery", "approve_assisted_recovery"]
    #: The page asking for the code the user reads out.
    approve_template = "admin/django_passkeys/recoveryrequest/approve_assisted.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Start assisted recovery"), permissions=["change"])
    def start_assisted_recovery(
        self, request: HttpRequest, queryset: QuerySet[RecoveryRequest]
    ) -> None:
        for recovery in queryset:
            try:
                flows.start_assisted(request, request.user, recovery.pk)
            except PasskeyError as error:
                self.message_user(request, f"{recovery}: {error.message}", messages.ERROR)
                continue
            self.log_change(request, recovery, "Started an assisted recovery")
            self.message_user(
                request,
                _("%(recovery)s: ask the person for the code their browser shows.")
                % {"recovery": recovery},
                messages.SUCCESS,
            )

    @admin.action(description=_("Approve assisted recovery"), permissions=["change"])
    def approve_assisted_recovery(
        self, request: HttpRequest, queryset: QuerySet[RecoveryRequest]
    ) -> TemplateResponse | None:
        recoveries = list(queryset[:2])
        if len(recoveries) != 1:
            self.message_user(request, _("Select exactly one recovery."), messages.ERROR)
            return None
        recovery = recoveries[0]
        if "approval_code" in request.POST:
            try:
                flows.approve_assisted(
                    request, request.user, recovery.pk, request.POST["approval_code"]
                )
            except PasskeyError as error:
                self.message_user(request, f"{recovery}: {error.message}", messages.ERROR)
            else:
                self.log_change(request, recovery, "Approved an assisted recovery")
                self.message_user(
                    request,
                    _("%(recovery)s approved: the person's browser signs in now.")
                    % {"recovery": recovery},
                    messages.SUCCESS,
                )
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Approve assisted recovery"),
            "opts": self.model._meta,
            "recovery": recovery,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, self.approve_template, context)
