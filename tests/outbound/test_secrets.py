"""SecretBox encryption of stored API keys, and mask for display."""

from __future__ import annotations

import pytest

from app.outbound.secrets import SecretBox, SecretUnreadable, mask

SERVICE_SECRET = "0123456789abcdef0123456789abcdef"
API_KEY = "sk-test-4f3c2b1a0987654321fedcba"


def test_encrypt_decrypt_round_trip() -> None:
    box = SecretBox(SERVICE_SECRET)

    # The service accepts keys of 8 characters or more; a shorter one may be refused (see below).
    for plaintext in [API_KEY, "EMPTY-KEY", "ключ-API-🔑", "a" * 4096]:
        assert box.decrypt(box.encrypt(plaintext)) == plaintext


def test_new_box_with_same_secret_decrypts() -> None:
    token = SecretBox(SERVICE_SECRET).encrypt(API_KEY)

    assert SecretBox(SERVICE_SECRET).decrypt(token) == API_KEY


def test_encryptions_of_same_value_differ() -> None:
    box = SecretBox(SERVICE_SECRET)

    assert box.encrypt(API_KEY) != box.encrypt(API_KEY)


def test_token_hides_plaintext() -> None:
    box = SecretBox(SERVICE_SECRET)

    for plaintext in [API_KEY, "EMPTY-KEY", "abcdefgh"]:
        token = box.encrypt(plaintext)
        assert token != plaintext
        assert plaintext not in token
        assert token.isascii()


def test_one_character_key_never_leaks() -> None:
    box = SecretBox(SERVICE_SECRET)

    # Most tokens contain any given character, so such a key is either refused or hidden.
    for _ in range(20):
        try:
            token = box.encrypt("x")
        except ValueError as error:
            assert "use a longer key" in str(error)
        else:
            assert "x" not in token


def test_empty_plaintext_rejected() -> None:
    with pytest.raises(ValueError, match="empty API key"):
        SecretBox(SERVICE_SECRET).encrypt("")


def test_plaintext_in_every_token_rejected() -> None:
    # Every token starts with "gAAAAAB", so no token can leave out "A".
    with pytest.raises(ValueError, match="every encrypted token contains it"):
        SecretBox(SERVICE_SECRET).encrypt("A")


def test_empty_key_material_rejected() -> None:
    with pytest.raises(ValueError, match="key_material is empty"):
        SecretBox("")


def test_different_secret_cannot_decrypt() -> None:
    token = SecretBox(SERVICE_SECRET).encrypt(API_KEY)

    with pytest.raises(SecretUnreadable, match="re-enter the API key"):
        SecretBox(SERVICE_SECRET + "-rotated").decrypt(token)


@pytest.mark.parametrize("token", ["", "not a token", "gAAAAABnot-valid", "ключ"])
def test_damaged_token_unreadable(token: str) -> None:
    with pytest.raises(SecretUnreadable, match="cannot be decrypted"):
        SecretBox(SERVICE_SECRET).decrypt(token)


def test_tampered_token_unreadable() -> None:
    box = SecretBox(SERVICE_SECRET)
    token = box.encrypt(API_KEY)
    tampered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]

    with pytest.raises(SecretUnreadable):
        box.decrypt(tampered)


def test_mask_shows_last_four_of_long_secret() -> None:
    assert mask(API_KEY) == "••••" + API_KEY[-4:]
    assert mask("123456789012") == "••••9012"


@pytest.mark.parametrize("secret", ["", "a", "short", "12345678901"])
def test_mask_hides_short_secret(secret: str) -> None:
    assert mask(secret) == "••••"


@pytest.mark.parametrize("length", range(0, 40))
def test_mask_reveals_at_most_four_characters(length: int) -> None:
    secret = "".join(chr(ord("a") + index % 26) for index in range(length))

    masked = mask(secret)
    revealed = masked.removeprefix("••••")

    assert masked.startswith("••••")
    assert len(revealed) <= 4
    assert secret.endswith(revealed)
