"""Payloads for the WebAuthn Signal API (WebAuthn L3 §5.1.10).

Pages pass these to ``PublicKeyCredential.signalAllAcceptedCredentials()`` and
``signalCurrentUserDetails()`` so that passkey providers drop removed passkeys and show current
account names. All identifiers are base64url, as the browser expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from webauthn.helpers import bytes_to_base64url

from .ceremonies import RelyingParty, display_name, user_handle_for
from .models import Credential


def _rp_id(request: HttpRequest | None) -> str:
    """The RP ID the payload is for: the request's Relying Party (multi-tenant sites)."""
    return (RelyingParty.for_request(request) if request else RelyingParty.from_settings()).id


def all_accepted_credentials(
    user: AbstractBaseUser,
    credentials: Sequence[Credential] | None = None,
    *,
    request: HttpRequest | None = None,
) -> dict[str, Any]:
    """``AllAcceptedCredentialsOptions``: the user's live credential ids (§5.1.10.2).

    ``credentials``: the user's active credentials when they are loaded already, with the user's
    handle (a sign-in reads them with the credential used); otherwise one query reads them.
    ``request``: the request the payload answers, whose Relying Party gives ``rpId`` (required
    when the RP ID is decided per request).
    """
    if credentials is not None:
        handle_row = getattr(user, "passkey_handle", None)
        handle = bytes(handle_row.handle) if handle_row is not None else user_handle_for(user)
        ids = [bytes(c.credential_id) for c in credentials]
    else:
        # One query: the ids, each with the owner's handle (read separately only without any).
        rows = list(
            Credential.objects.active()
            .filter(user_id=user.pk)
            .values_list("credential_id", "user__passkey_handle__handle")
        )
        handle = rows[0][1] if rows and rows[0][1] is not None else user_handle_for(user)
        ids = [bytes(row[0]) for row in rows]
    return {
        "rpId": _rp_id(request),
        "userId": bytes_to_base64url(bytes(handle)),
        "allAcceptedCredentialIds": [bytes_to_base64url(i) for i in ids],
    }


def current_user_details(
    user: AbstractBaseUser, *, request: HttpRequest | None = None
) -> dict[str, Any]:
    """``CurrentUserDetailsOptions``: the account's current name and display name (§5.1.10.3).

    ``request`` as for :func:`all_accepted_credentials`.
    """
    return {
        "rpId": _rp_id(request),
        "userId": bytes_to_base64url(user_handle_for(user)),
        "name": user.get_username(),
        "displayName": display_name(user),
    }
