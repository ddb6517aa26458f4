"""Client data and authenticator data checks shared by both ceremonies: origin, cross-origin
embedding, type, RP ID hash and the UP/UV/BE/BS flags (WebAuthn L3 §7.1 steps 7-16,
§7.2 steps 11-18), each sent through ``register/verify`` and ``login/verify``."""

from __future__ import annotations

from typing import Any

import pytest

from django_passkeys.errors import Reason
from tests.authenticator import SoftAuthenticator
from tests.support import (
    LOGIN_VERIFY,
    REGISTER_VERIFY,
    assert_rejected,
    enroll,
    login_options,
    registration_options,
)


@pytest.fixture(params=["register", "login"])
def hostile(request, api, user):
    """Build a response with the authenticator's hostile knobs, for either ceremony."""

    def _build(**knobs: Any) -> tuple[str, dict[str, Any]]:
        if request.param == "register":
            options = registration_options(api, user)
            return REGISTER_VERIFY, SoftAuthenticator().create(options, **knobs)
        authenticator = SoftAuthenticator()
        enroll(user, authenticator, api=api)
        return LOGIN_VERIFY, authenticator.get(login_options(api), **knobs)

    return _build


def _rejected(api, unchanged, sent: tuple[str, dict[str, Any]], reason: Reason) -> None:
    path, body = sent
    with unchanged():
        response = api.post(path, body)
    assert_rejected(response, reason)


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",  # another host
        "http://testserver",  # http instead of https
        "https://testserver:8443",  # another port
        "https://login.testserver",  # a subdomain not listed in PASSKEYS_ALLOWED_ORIGINS
        "https://testserver.evil.example",  # a suffix trick
        "null",  # opaque origin
    ],
)
def test_unexpected_origin_is_rejected(api, unchanged, hostile, origin):
    _rejected(api, unchanged, hostile(origin=origin), Reason.ORIGIN_MISMATCH)


def test_cross_origin_iframe_is_rejected(api, unchanged, hostile):
    sent = hostile(client_extra={"crossOrigin": True})
    _rejected(api, unchanged, sent, Reason.CROSS_ORIGIN_REJECTED)


def test_top_origin_is_rejected(api, unchanged, hostile):
    # Any topOrigin means the ceremony ran in an embedded frame, which this RP never allows.
    sent = hostile(client_extra={"topOrigin": "https://testserver"})
    _rejected(api, unchanged, sent, Reason.CROSS_ORIGIN_REJECTED)


def test_wrong_client_data_type_is_rejected(api, unchanged, hostile, request):
    wrong = "webauthn.get" if "register" in request.node.callspec.id else "webauthn.create"
    _rejected(api, unchanged, hostile(type_=wrong), Reason.TYPE_MISMATCH)


def test_payment_client_data_type_is_rejected(api, unchanged, hostile):
    _rejected(api, unchanged, hostile(type_="payment.get"), Reason.TYPE_MISMATCH)


def test_wrong_rp_id_hash_is_rejected(api, unchanged, hostile):
    _rejected(api, unchanged, hostile(rp_id="evil.example"), Reason.RP_ID_MISMATCH)


def test_parent_domain_rp_id_hash_is_rejected(api, unchanged, hostile):
    # The configured RP ID is "testserver"; an assertion scoped to another ID never matches.
    _rejected(api, unchanged, hostile(rp_id="server"), Reason.RP_ID_MISMATCH)


def test_missing_user_presence_is_rejected(api, unchanged, hostile):
    _rejected(api, unchanged, hostile(flags={"up": False}), Reason.USER_PRESENCE_MISSING)


def test_missing_user_verification_is_rejected_when_required(api, unchanged, hostile, settings):
    settings.PASSKEYS_USER_VERIFICATION = "required"
    sent = hostile(flags={"uv": False})
    _rejected(api, unchanged, sent, Reason.USER_VERIFICATION_MISSING)


def test_missing_user_verification_is_accepted_when_preferred(api, hostile):
    path, body = hostile(flags={"uv": False})
    assert api.post(path, body).status_code in (200, 201)


def test_backup_state_without_backup_eligibility_is_rejected(api, unchanged, hostile):
    # §7.1 step 16 / §7.2 step 18: BS = 1 with BE = 0 is an impossible state.
    sent = hostile(flags={"be": False, "bs": True})
    _rejected(api, unchanged, sent, Reason.BACKUP_STATE_INVALID)
