"""Every reason code the four ceremony endpoints can produce has an attack test here."""

from __future__ import annotations

import ast
from pathlib import Path

from django_passkeys.errors import Reason

#: Codes the four ceremony endpoints never produce: they belong to other features (rate limits,
#: recovery, the management pages), each tested with its feature. Listed by value, so that the
#: list may name a code before its feature lands.
NOT_PRODUCED_BY_CEREMONIES = {
    "rate_limited",
    "cooldown_active",
    "recovery_token_invalid",
    "recovery_token_expired",
    "recovery_denied",
    "second_factor_invalid",
    "not_found",
    # The move off passwords (tests/test_upgrade_ceremony.py, tests/test_passkey_only.py).
    "upgrade_not_offered",
    "password_sign_in_disabled",
    "passkey_only_not_ready",
    "passkey_only_required",
    # A form posted twice replaces recovery codes once (tests/test_recovery_codes.py).
    "recovery_codes_changed",
    # A per-request relying party that does not fit the host (tests/test_multi_tenant.py).
    "rp_not_configured",
}


def covered_codes() -> dict[Reason, set[str]]:
    """Reason codes named by a test (body or parametrize) that asserts a rejection.

    A test asserts a rejection when it calls ``assert_rejected`` or a module helper whose name
    ends in ``_rejected`` (which calls it).
    """
    covered: dict[Reason, set[str]] = {}
    for module in sorted(Path(__file__).parent.glob("test_*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
                continue
            calls = [
                n
                for n in ast.walk(node)
                if isinstance(n, ast.Call) and getattr(n.func, "id", "").endswith("_rejected")
            ]
            if not calls:
                continue
            named = [
                n.attr
                for part in (*node.decorator_list, *node.body)
                for n in ast.walk(part)
                if isinstance(n, ast.Attribute) and getattr(n.value, "id", "") == "Reason"
            ]
            for name in named:
                covered.setdefault(Reason[name], set()).add(f"{module.name}::{node.name}")
    return covered


def test_every_producible_reason_code_has_an_attack_test():
    covered = covered_codes()
    producible = {reason for reason in Reason if reason.value not in NOT_PRODUCED_BY_CEREMONIES}
    missing = sorted(producible - set(covered))
    assert not missing, f"reason codes without an attack test: {missing}"
    assert not {reason.value for reason in covered} & NOT_PRODUCED_BY_CEREMONIES
    print("covered:", {reason.value: sorted(tests)[0] for reason, tests in sorted(covered.items())})
