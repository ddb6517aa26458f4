"""Migration 0002 binds existing credentials to their owner's user handle (security rule 10)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

APP = "django_passkeys"
BEFORE = [(APP, "0001_initial")]
AFTER = [(APP, "0002_credential_user_handle")]


def migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_credentials_are_bound_to_their_owners_handle():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        old = migrate(BEFORE)
        User = old.get_model("testapp", "User")
        Credential = old.get_model(APP, "Credential")
        UserHandle = old.get_model(APP, "UserHandle")
        with_handle = User.objects.create(username="with-handle")
        without_handle = User.objects.create(username="without-handle")
        handle = UserHandle.objects.create(user=with_handle, handle=b"\x07" * 64)
        for index, owner in enumerate([with_handle, with_handle, without_handle]):
            Credential.objects.create(
                user=owner,
                credential_id=bytes([index]) * 16,
                credential_id_sha256=f"{index:064x}",
                public_key=b"k",
            )

        new = migrate(AFTER)

        Credential = new.get_model(APP, "Credential")
        UserHandle = new.get_model(APP, "UserHandle")
        bound = {bytes(c.user_handle) for c in Credential.objects.filter(user_id=with_handle.pk)}
        assert bound == {bytes(handle.handle)}
        created = UserHandle.objects.get(user_id=without_handle.pk)
        assert len(bytes(created.handle)) == 64
        (lone,) = Credential.objects.filter(user_id=without_handle.pk)
        assert bytes(lone.user_handle) == bytes(created.handle)
    finally:
        migrate(latest)
