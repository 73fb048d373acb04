"""Encryption at rest for the API keys that users register with their model endpoints.

Keys are encrypted with Fernet (AES-128-CBC with HMAC-SHA256, from the ``cryptography``
package). The Fernet key is derived from the service secret (REALUNIFY_SECRET_KEY) with
HKDF-SHA256, no salt, and the info string ``HKDF_INFO`` below, so this key differs from any other
key the service derives from the same secret. Changing the info string or the service secret makes
every stored API key unreadable.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HKDF_INFO = b"realunify-board/outbound-api-keys/fernet/v1"
MASK = "••••"
MASK_MIN_LENGTH = 12
MASK_VISIBLE_CHARACTERS = 4
# A token is URL-safe base64, so it can contain a plaintext of one or two characters by chance.
# Encrypting again with a fresh IV gives a new token. Every token made from 2004 to 2038 starts with
# "gAAAAAB" (the version byte and the high bytes of the timestamp), so a plaintext such as "A" or
# "gA" is in every token and cannot be stored.
MAX_ENCRYPT_ATTEMPTS = 256


class SecretUnreadable(ValueError):
    """A stored token that the current service secret cannot decrypt."""


class SecretBox:
    """Fernet encryption of API keys, with a key derived from the service secret."""

    def __init__(self, key_material: str) -> None:
        if not key_material:
            raise ValueError(
                "key_material is empty; pass the service secret (REALUNIFY_SECRET_KEY)"
            )
        derived = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=HKDF_INFO,
        ).derive(key_material.encode("utf-8"))
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plaintext: str) -> str:
        """Encrypt ``plaintext`` into an ASCII token for a text column.

        Each call returns a different token, and the token never contains the plaintext.
        Raises ``ValueError`` for an empty plaintext (store no token when there is no key) and
        for a plaintext that every token contains, such as "A".
        """
        if not plaintext:
            raise ValueError("cannot encrypt an empty API key; store no key instead")
        data = plaintext.encode("utf-8")
        for _attempt in range(MAX_ENCRYPT_ATTEMPTS):
            token = self._fernet.encrypt(data).decode("ascii")
            if plaintext not in token:
                return token
        raise ValueError(
            "cannot store this API key: it is so short that every encrypted token contains it; "
            "use a longer key"
        )

    def decrypt(self, token: str) -> str:
        """Decrypt a token from ``encrypt``.

        Raises ``SecretUnreadable`` if the token is damaged or was made with another secret.
        """
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as error:
            raise SecretUnreadable(
                "the stored API key cannot be decrypted: the token is damaged or "
                "REALUNIFY_SECRET_KEY changed since it was stored; re-enter the API key"
            ) from error


def mask(secret: str) -> str:
    """Return ``secret`` masked for display: "••••" followed by its last 4 characters when it is
    at least 12 characters long, otherwise "••••" alone."""
    if len(secret) >= MASK_MIN_LENGTH:
        return MASK + secret[-MASK_VISIBLE_CHARACTERS:]
    return MASK
