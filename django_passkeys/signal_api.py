"""Payloads for the WebAuthn Signal API (WebAuthn L3 §5.1.10).

Pages pass these to ``PublicKeyCredential.signalAllAcceptedCredentials()`` and
``signalCurrentUserDetails()`` so that passkey providers drop removed passkeys and show current
account names. All identifiers are base64url, as the browser expects.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from webauthn.helpers import bytes_to_base64url

from .ceremonies import display_name, user_handle_for
from .conf import conf
from .models import Credential


def all_accepted_credentials(user: AbstractBaseUser) -> dict[str, Any]:
    """``AllAcceptedCredentialsOptions``: the user's live credential ids (§5.1.10.2)."""
    # One query: the ids, each with the owner's handle (read separately only without any).
    rows = list(
        Credential.objects.active()
        .filter(user_id=user.pk)
        .values_list("credential_id", "user__passkey_handle__handle")
    )
    handle = rows[0][1] if rows and rows[0][1] is not None else user_handle_for(user)
    return {
        "rpId": conf.PASSKEYS_RP_ID,
        "userId": bytes_to_base64url(bytes(handle)),
        "allAcceptedCredentialIds": [bytes_to_base64url(bytes(row[0])) for row in rows],
    }


def current_user_details(user: AbstractBaseUser) -> dict[str, Any]:
    """``CurrentUserDetailsOptions``: the account's current name and display name (§5.1.10.3)."""
    return {
        "rpId": conf.PASSKEYS_RP_ID,
        "userId": bytes_to_base64url(user_handle_for(user)),
        "name": user.get_username(),
        "displayName": display_name(user),
    }
