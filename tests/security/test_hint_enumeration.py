"""An e-mail hint never tells whether the account exists (security rule 11).

Neither in the ``allowCredentials`` of ``login/options`` (count, id lengths, transports, keys:
fakes follow the distribution of real answers), nor in what ``login/verify`` answers afterwards:
an attacker's own passkey is ``credential_not_allowed`` for an existing and an unknown address
alike, and a listed id replayed without its private key is ``signature_invalid`` either way.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from django_passkeys.errors import Reason
from django_passkeys.models import USER_HANDLE_BYTES, Credential, UserHandle
from tests.authenticator import SoftAuthenticator, b64url_decode
from tests.factories import UserFactory
from tests.support import LOGIN_VERIFY, assert_rejected, enroll, login_options

#: What browsers report: nothing (older clients), platform, synced platform, security keys.
TRANSPORTS: list[list[str]] = [[], ["internal"], ["hybrid", "internal"], ["usb"], ["nfc", "usb"]]
#: Credential id lengths seen in the wild (Android, Apple, Windows Hello, YubiKey resident).
ID_LENGTHS = [16, 20, 32, 64]
ACCOUNTS = 40
UNKNOWN = 300
#: Largest allowed gap between a frequency among real answers and among fake ones.
TOLERANCE = 0.12


def shape(options: dict[str, Any]) -> tuple[tuple[Any, ...], ...]:
    """What an answer shows besides the random bytes: per entry, id length, transports, keys."""
    return tuple(
        (
            len(b64url_decode(entry["id"])),
            tuple(entry["transports"]) if "transports" in entry else None,
            tuple(sorted(entry)),
        )
        for entry in options["allowCredentials"]
    )


def frequencies(values: list[Any]) -> dict[Any, float]:
    counts = Counter(values)
    return {value: count / len(values) for value, count in counts.items()}


def assert_close(real: list[Any], fake: list[Any], what: str) -> None:
    real_freq, fake_freq = frequencies(real), frequencies(fake)
    for value in set(real_freq) | set(fake_freq):
        gap = abs(real_freq.get(value, 0.0) - fake_freq.get(value, 0.0))
        assert gap <= TOLERANCE, (what, value, real_freq, fake_freq)


@pytest.fixture
def population(api: Any, db: Any) -> list[Any]:
    """Accounts with 1 to 3 passkeys each, of varied transports and id lengths."""
    rng = random.Random(20261129)
    users = []
    for index in range(ACCOUNTS):
        user = UserFactory(email=f"member{index}@example.com")
        for _ in range(rng.choice([1, 2, 3])):
            key = SoftAuthenticator(credential_id=rng.randbytes(rng.choice(ID_LENGTHS)))
            enroll(user, key, api=api, transports=rng.choice(TRANSPORTS))
        users.append(user)
    # Evenly spaced user handles make every account an equally likely donor of the fake shape,
    # so the test is deterministic; random handles make it so on average.
    for index, row in enumerate(UserHandle.objects.order_by("pk")):
        row.handle = (index * 2 ** (8 * USER_HANDLE_BYTES) // ACCOUNTS).to_bytes(
            USER_HANDLE_BYTES, "big"
        )
        row.save(update_fields=["handle"])
    return users


def test_fake_answers_follow_the_distribution_of_real_ones(api, population):
    real = [shape(login_options(api, user.email)) for user in population]
    fake = [shape(login_options(api, f"stranger{i}@example.net")) for i in range(UNKNOWN)]

    # Every fake answer is one a real account gives: no count, length, transport list or key
    # set that only fakes have.
    assert set(fake) <= set(real), set(fake) - set(real)
    assert_close([len(s) for s in real], [len(s) for s in fake], "count")
    entries_real = [entry for s in real for entry in s]
    entries_fake = [entry for s in fake for entry in s]
    assert_close([e[0] for e in entries_real], [e[0] for e in entries_fake], "id length")
    assert_close([e[1] for e in entries_real], [e[1] for e in entries_fake], "transports")
    assert_close([e[2] for e in entries_real], [e[2] for e in entries_fake], "keys")
    # The population does vary, so the comparison above means something.
    assert {len(s) for s in real} == {1, 2, 3}
    assert {e[1] for e in entries_real} >= {None, ("internal",), ("nfc", "usb")}


def test_fake_answers_are_stable_per_address(api, population):
    passkeyless = UserFactory(email="passwordonly@example.com")
    inactive = population[0]
    type(inactive).objects.filter(pk=inactive.pk).update(is_active=False)
    real_shapes = {shape(login_options(api, user.email)) for user in population[1:]}
    for hint in ("nobody@example.net", passkeyless.email, inactive.email):
        first = login_options(api, hint)
        assert login_options(api, hint)["allowCredentials"] == first["allowCredentials"]
        assert login_options(api, hint.upper())["allowCredentials"] == first["allowCredentials"]
        assert shape(first) in real_shapes
    assert (
        login_options(api, "nobody@example.net")["allowCredentials"]
        != login_options(api, "somebody@example.net")["allowCredentials"]
    )


def test_fake_answer_without_any_passkey_in_the_database(api, db):
    first = login_options(api, "nobody@example.net")["allowCredentials"]
    assert first
    assert login_options(api, "nobody@example.net")["allowCredentials"] == first


# -- what login/verify answers afterwards ------------------------------------------------------


VICTIM = "victim@example.com"
STRANGER = "nobody@example.net"


@pytest.fixture
def victim(api: Any, db: Any) -> Credential:
    return enroll(UserFactory(email=VICTIM), SoftAuthenticator(), api=api)


@pytest.fixture
def attacker(api: Any, db: Any) -> SoftAuthenticator:
    """The attacker's own passkey, registered to the attacker's own account."""
    key = SoftAuthenticator()
    enroll(UserFactory(email="attacker@example.org"), key, api=api)
    return key


@pytest.mark.parametrize("hint", [VICTIM, STRANGER])
@pytest.mark.parametrize("user_handle", [True, None])
def test_attackers_own_passkey_is_not_allowed_for_any_hinted_address(
    api, victim, attacker, unchanged, hint, user_handle
):
    options = login_options(api, hint)
    assertion = attacker.get(options, user_handle=user_handle)
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.CREDENTIAL_NOT_ALLOWED)
    assert "_auth_user_id" not in api.client.session


@pytest.mark.parametrize("hint", [VICTIM, STRANGER])
@pytest.mark.parametrize(
    "flags",
    [
        {},
        {"be": False, "bs": False},  # the stored BE flag differs: only after the signature
        {"uv": False},
    ],
    ids=["as-is", "be-changed", "no-uv"],
)
@pytest.mark.parametrize("user_handle", [True, None])
def test_listed_id_replayed_without_its_key_answers_the_same_for_any_address(
    api, victim, attacker, unchanged, hint, flags, user_handle
):
    options = login_options(api, hint)
    listed = b64url_decode(options["allowCredentials"][0]["id"])
    assert Credential.objects.by_credential_id(listed).exists() is (hint == VICTIM)
    assertion = attacker.get(options, credential_id=listed, flags=flags, user_handle=user_handle)
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.SIGNATURE_INVALID)
    assert "_auth_user_id" not in api.client.session
