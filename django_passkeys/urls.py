"""URLs of the app; include them under a prefix such as ``auth/passkey/``."""

from __future__ import annotations

from django.urls import path, register_converter

from .views.base import IdConverter
from .views.cooldown import CooldownPageView
from .views.login import LoginOptionsView, LoginPageView, LoginVerifyView
from .views.manage import ManagePageView, RemoveView, RenameView, provider_icon
from .views.passkey_upgrade import (
    UpgradeDeclineView,
    UpgradeOptionsView,
    UpgradePageView,
    UpgradeVerifyView,
)
from .views.password_sign_in import PasskeyOnlyView
from .views.reauth import ReauthOptionsView, ReauthPageView, ReauthVerifyView
from .views.recovery import (
    ApprovalsView,
    ApproveView,
    DenyView,
    RecoverContinueView,
    RecoverDoneView,
    RecoverLinkView,
    RecoverOpenView,
    RecoverStatusView,
    RecoverVerifyView,
    RecoverView,
)
from .views.recovery_codes import RecoveryCodesView
from .views.registration import RegistrationOptionsView, RegistrationVerifyView
from .views.security import SecurityPageView
from .views.session_list import SessionsView
from .views.signout import SignOutView
from .views.totp import TotpRemoveView, TotpView

app_name = "django_passkeys"

# Ids in URLs are ASCII digits short enough for a 64-bit column: a longer one is a 404, never
# an overflow in the database driver.
register_converter(IdConverter, "passkeys_id")

urlpatterns = [
    path("register/options", RegistrationOptionsView.as_view(), name="register-options"),
    path("register/verify", RegistrationVerifyView.as_view(), name="register-verify"),
    path("login/options", LoginOptionsView.as_view(), name="login-options"),
    path("login/verify", LoginVerifyView.as_view(), name="login-verify"),
    path("reauth/options", ReauthOptionsView.as_view(), name="reauth-options"),
    path("reauth/verify", ReauthVerifyView.as_view(), name="reauth-verify"),
    path("reauth/", ReauthPageView.as_view(), name="reauth"),
    # The move off passwords (docs/rollout.rst): the upgrade after a password sign-in, and
    # passkey-only accounts.
    path("upgrade/", UpgradePageView.as_view(), name="upgrade"),
    path("upgrade/options", UpgradeOptionsView.as_view(), name="upgrade-options"),
    path("upgrade/verify", UpgradeVerifyView.as_view(), name="upgrade-verify"),
    path("upgrade/decline", UpgradeDeclineView.as_view(), name="upgrade-decline"),
    path("passkey-only/", PasskeyOnlyView.as_view(), name="passkey-only"),
    path("login/", LoginPageView.as_view(), name="login"),
    path("manage/", ManagePageView.as_view(), name="manage"),
    path("manage/<passkeys_id:pk>/rename", RenameView.as_view(), name="rename"),
    path("manage/<passkeys_id:pk>/remove", RemoveView.as_view(), name="remove"),
    path("providers/<uuid:aaguid>/<slug:variant>", provider_icon, name="provider-icon"),
    path("sessions/", SessionsView.as_view(), name="sessions"),
    path("sign-out/", SignOutView.as_view(), name="sign-out"),
    path("cooldown/", CooldownPageView.as_view(), name="cooldown"),
    path("security/", SecurityPageView.as_view(), name="security"),
    path("recovery-codes/", RecoveryCodesView.as_view(), name="recovery-codes"),
    path("totp/", TotpView.as_view(), name="totp"),
    path("totp/remove", TotpRemoveView.as_view(), name="totp-remove"),
    # Account recovery: a mailbox link plus a second factor (flows.recovery).
    path("recover/", RecoverView.as_view(), name="recover"),
    path("recover/link/<slug:token>", RecoverLinkView.as_view(), name="recover-link"),
    path("recover/open", RecoverOpenView.as_view(), name="recover-open"),
    path("recover/verify", RecoverVerifyView.as_view(), name="recover-verify"),
    path("recover/status", RecoverStatusView.as_view(), name="recover-status"),
    path("recover/continue", RecoverContinueView.as_view(), name="recover-continue"),
    path("recover/done", RecoverDoneView.as_view(), name="recover-done"),
    path("recover/approvals/", ApprovalsView.as_view(), name="recover-approvals"),
    path(
        "recover/approvals/<passkeys_id:pk>/approve", ApproveView.as_view(), name="recover-approve"
    ),
    path("recover/approvals/<passkeys_id:pk>/deny", DenyView.as_view(), name="recover-deny"),
]
