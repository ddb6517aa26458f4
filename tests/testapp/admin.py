"""The test project's user admin: a site's own ``UserAdmin``, with the two documented lines."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from django_passkeys.admin import PasskeyUserAdminMixin

from .models import User


@admin.register(User)
class UserAdmin(PasskeyUserAdminMixin, BaseUserAdmin):
    """Django's ``UserAdmin`` for the custom user model, with the user's passkeys."""
