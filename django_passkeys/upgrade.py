"""The passkey upgrade: right after a password sign-in, a passkey for users who have none.

**How the app learns of a password sign-in.** A ``user_logged_in`` receiver
(:func:`note_password_sign_in`, connected in ``AppConfig.ready()``) looks at the backend that
signed the user in: anything but :class:`~django_passkeys.backends.PasskeyBackend` (and its
subclasses, which recovery uses too) is a password sign-in, or at least not a passkey one. For
a sign-in made by a view (not ``force_login()`` or a test client's ``login()``) it records a
``password_login`` audit event, for the adoption figures, and stamps the session
(:data:`PASSWORD_SIGN_IN_KEY`). No other query.

**How the user gets there.** The least intrusive way, the one the example project shows, is
:class:`UpgradeMiddleware`: on the answer to the very request that signed in with a password,
if it is a redirect (``LoginView``, the admin, django-allauth's forms all redirect), and only
if the user is eligible, it sends the redirect through the app's ``upgrade/?next=<where it was
going>`` page. Every other request costs one attribute check. Without the middleware, pointing
``LOGIN_REDIRECT_URL`` at ``django_passkeys:upgrade`` does the same for sign-ins without a
``next``.

**Eligible** (:func:`upgrade_due`): signed in with a password within :data:`UPGRADE_WINDOW`,
offered passkeys by the rollout (:mod:`django_passkeys.rollout`), without an active passkey,
and not snoozed ("Don't ask again for N days", ``PASSKEYS_UPGRADE_SNOOZE_DAYS``).

**The page** tries, where ``PublicKeyCredential.getClientCapabilities().conditionalCreate``
says the browser can, a conditional create (``mediation: "conditional"``): the browser's
password manager may create the passkey with no click at all, and such a credential arrives
without user presence (WebAuthn L3 §7.1 step 14), which only the upgrade's own challenges
accept (:class:`~django_passkeys.models.Challenge.Purpose` ``UPGRADE``). Where the browser
cannot, or the request does not settle within ``PASSKEYS_UPGRADE_WAIT`` seconds, the page
shows "Sign in faster with a passkey": create one now, not now, or don't ask again for N days.
Every way out goes on to ``next``: the upgrade never blocks the user.
"""

from __future__ import annotations

import functools
import time
from datetime import timedelta
from typing import Any

from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from django_passkeys import audit
from django_passkeys.backends import PasskeyBackend
from django_passkeys.conf import conf
from django_passkeys.models import AdoptionState, AuthEvent, Credential
from django_passkeys.redirects import safe_next_url, with_next
from django_passkeys.rollout import passkeys_offered

__all__ = [
    "PASSWORD_SIGN_IN_KEY",
    "UPGRADE_WINDOW",
    "UpgradeMiddleware",
    "note_password_sign_in",
    "snooze_upgrade",
    "upgrade_due",
    "upgrade_url",
]

#: Session key: when the session signed in with a password (or another non-passkey backend).
PASSWORD_SIGN_IN_KEY = "_passkeys_password_sign_in"
#: Seconds after a password sign-in during which the upgrade page still asks (and at most
#: ``PASSKEYS_REAUTH_MAX_AGE``, since creating the passkey needs a recent sign-in).
UPGRADE_WINDOW = 10 * 60
_JUST_SIGNED_IN_ATTR = "_passkeys_password_sign_in"


def _is_passkey_backend(path: Any) -> bool:
    return isinstance(path, str) and bool(path) and _names_passkey_backend(path)


@functools.lru_cache(maxsize=32)
def _names_passkey_backend(path: str) -> bool:
    try:
        backend = import_string(path)
    except ImportError:
        return False
    return isinstance(backend, type) and issubclass(backend, PasskeyBackend)


def note_password_sign_in(
    sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any
) -> None:
    """``user_logged_in`` receiver: stamp and audit a sign-in by anything but a passkey.

    A passkey sign-in (or a recovery) clears an earlier stamp of the same session.
    """
    session = getattr(request, "session", None)
    if request is None or session is None:
        return
    if _is_passkey_backend(session.get(BACKEND_SESSION_KEY)):
        session.pop(PASSWORD_SIGN_IN_KEY, None)
        return
    # force_login() and the test client's login() build a bare request that no URL resolved:
    # not a sign-in anybody made, so neither counted nor offered an upgrade.
    if getattr(request, "resolver_match", None) is None:
        return
    session[PASSWORD_SIGN_IN_KEY] = int(time.time())
    setattr(request, _JUST_SIGNED_IN_ATTR, True)
    audit.record(request, AuthEvent.Type.PASSWORD_LOGIN, success=True, user=user)


def _signed_in_with_password_recently(request: HttpRequest) -> bool:
    # Within the window and the sign-in's own freshness: upgrade/options needs a recent sign-in.
    window = min(UPGRADE_WINDOW, conf.PASSKEYS_REAUTH_MAX_AGE)
    stamp = request.session.get(PASSWORD_SIGN_IN_KEY)
    return isinstance(stamp, int) and 0 <= time.time() - stamp <= window


def upgrade_due(request: HttpRequest) -> bool:
    """Whether the signed-in user should be offered a passkey now (see the module docstring).

    One query beyond the rollout's own: the user's passkeys and snooze, together.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if not _signed_in_with_password_recently(request) or not passkeys_offered(request):
        return False
    row = (
        get_user_model()
        ._default_manager.filter(pk=user.pk)
        .annotate(
            has_passkey=Exists(Credential.objects.active().filter(user_id=OuterRef("pk"))),
            snoozed=Exists(
                AdoptionState.objects.filter(
                    user_id=OuterRef("pk"), upgrade_snoozed_until__gt=timezone.now()
                )
            ),
        )
        .values_list("has_passkey", "snoozed")
        .first()
    )
    return row is not None and not any(row)


def finish_upgrade(request: HttpRequest) -> None:
    """The upgrade is over for this sign-in (a passkey made, or the user said no)."""
    request.session.pop(PASSWORD_SIGN_IN_KEY, None)


def snooze_upgrade(user: Any, days: int) -> None:
    """Keep the upgrade quiet for ``user`` for ``days`` days."""
    AdoptionState.objects.update_or_create(
        user_id=user.pk,
        defaults={"upgrade_snoozed_until": timezone.now() + timedelta(days=days)},
    )


def upgrade_url(next_url: str) -> str:
    """The app's upgrade page, going on to ``next_url`` afterwards."""
    return with_next(reverse("django_passkeys:upgrade"), next_url)


class UpgradeMiddleware:
    """Send the redirect that follows a password sign-in through the upgrade page.

    Put it after ``AuthenticationMiddleware``. Only the answer to the request that signed in is
    touched, only when it is a redirect to this site, and only when :func:`upgrade_due`.
    """

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response: HttpResponse = self.get_response(request)
        if not getattr(request, _JUST_SIGNED_IN_ATTR, False):
            return response
        location = response.get("Location") if 300 <= response.status_code < 400 else None
        if location and safe_next_url(request, location) and upgrade_due(request):
            response["Location"] = upgrade_url(location)
        return response
