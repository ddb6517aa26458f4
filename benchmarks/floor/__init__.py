"""The floor: py_webauthn behind two bare Django views, what any passkey sign-in must cost."""
