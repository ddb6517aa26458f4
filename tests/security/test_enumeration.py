"""No user enumeration through ``login/options`` (security rule 5): an e-mail hint for an
unknown address, for an account without passkeys and for an account with passkeys get answers of
the same shape, and comparable timing."""

from __future__ import annotations

import statistics
import time
from typing import Any

from tests.authenticator import SoftAuthenticator
from tests.factories import UserFactory
from tests.support import LOGIN_OPTIONS, enroll, login_options

KNOWN = "known@example.com"
PASSKEYLESS = "passwordonly@example.com"
INACTIVE = "inactive@example.com"
UNKNOWN = "nobody@example.com"


def _shape(value: Any) -> Any:
    """The structure of a JSON value: keys and types, not contents."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return sorted({repr(_shape(item)) for item in value})
    return type(value).__name__


def _accounts(api: Any) -> None:
    enroll(UserFactory(email=KNOWN), SoftAuthenticator(), api=api)
    UserFactory(email=PASSKEYLESS)
    inactive = enroll(UserFactory(email=INACTIVE), SoftAuthenticator(), api=api)
    type(inactive.user).objects.filter(pk=inactive.user.pk).update(is_active=False)


def test_login_options_have_one_shape_for_every_kind_of_account(api, db):
    _accounts(api)
    answers = {hint: login_options(api, hint) for hint in (KNOWN, PASSKEYLESS, INACTIVE, UNKNOWN)}
    shapes = {hint: _shape(answer) for hint, answer in answers.items()}
    assert len({repr(shape) for shape in shapes.values()}) == 1, shapes
    for answer in answers.values():
        assert answer["allowCredentials"], "every hint gets a non-empty allowCredentials"
        entries = {frozenset(entry) for entry in answer["allowCredentials"]}
        assert entries == {frozenset({"id", "type", "transports"})}
    # The real answer and the fake ones use ids of the same length.
    lengths = {
        len(entry["id"]) for answer in answers.values() for entry in answer["allowCredentials"]
    }
    assert len(lengths) == 1


def test_fake_credentials_are_deterministic_for_the_same_hint(api, db):
    _accounts(api)
    for hint in (UNKNOWN, PASSKEYLESS):
        first, again = login_options(api, hint), login_options(api, hint)
        assert first["allowCredentials"] == again["allowCredentials"]
        assert first["challenge"] != again["challenge"]
        # E-mail addresses match case-insensitively, so the fakes do too.
        assert login_options(api, hint.upper())["allowCredentials"] == first["allowCredentials"]
    assert (
        login_options(api, UNKNOWN)["allowCredentials"]
        != login_options(api, "someone.else@example.com")["allowCredentials"]
    )


def test_login_options_timing_does_not_reveal_the_account(api, db):
    _accounts(api)
    hints = (KNOWN, PASSKEYLESS, UNKNOWN)
    samples: dict[str, list[float]] = {hint: [] for hint in hints}
    for hint in hints:  # warm up caches and connections
        login_options(api, hint)
    for _ in range(40):  # interleaved, so that drift on the machine hits every hint alike
        for hint in hints:
            start = time.perf_counter()
            response = api.post(LOGIN_OPTIONS, {"emailHint": hint})
            samples[hint].append(time.perf_counter() - start)
            assert response.status_code == 200
    medians = {hint: statistics.median(values) for hint, values in samples.items()}
    print("login/options median seconds:", {k: f"{v * 1000:.3f} ms" for k, v in medians.items()})
    slowest, fastest = max(medians.values()), min(medians.values())
    # CI machines are noisy: the bound is generous. The medians must lie within 3x of each other,
    # or within 5 ms in absolute terms. All three paths run the same single query; a lookup
    # that skipped work for unknown accounts would show as a large, stable ratio.
    assert slowest <= 3 * fastest or slowest - fastest < 0.005, medians
