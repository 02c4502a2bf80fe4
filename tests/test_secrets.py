"""Secrets: recognised the same way everywhere, masked in values and in free text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

from framework._engine.secrets import (
    SECRET_MASK,
    flatten,
    is_secret_key,
    is_url_key,
    mask_text,
    redact,
    secrets_in,
    secrets_of,
    url_passwords,
)

URL = ("database", "url")


def test_flatten_yields_leaves_and_keeps_empty_dicts() -> None:
    """Nested dicts become (path, value) leaves; an empty dict is a leaf of its own."""
    assert list(flatten({"a": {"b": 1, "c": {}}, "d": [1]})) == [
        (("a", "b"), 1),
        (("a", "c"), {}),
        (("d",), [1]),
    ]


@pytest.mark.parametrize(
    ("path", "secret", "url"),
    [
        (("database", "url"), False, True),
        (("cache", "redis_url"), False, True),
        (("sentry", "dsn"), False, True),
        (("http", "curl"), False, False),
        (("db", "password"), True, False),
        (("x", "API_KEY"), True, False),
        ((), False, False),
    ],
)
def test_secret_and_url_keys(path: tuple[str, ...], secret: bool, url: bool) -> None:
    """Secret keys are named for secrets; URL keys are `url`, `*_url`, `dsn`, `*_dsn`, `uri`."""
    assert is_secret_key(path) is secret
    assert is_url_key(path) is url


@pytest.mark.parametrize(
    ("value", "path", "shown", "password"),
    [
        ("postgresql+asyncpg://app:s3cret@h/db", (), "postgresql+asyncpg://app:***@h/db", "s3cret"),
        ("redis://:pw@host:6379/0", (), "redis://:***@host:6379/0", "pw"),
        (
            "postgresql+asyncpg://app@h/db?password=s3cret",
            (),
            "postgresql+asyncpg://app@h/db?password=***",
            "s3cret",
        ),
        (
            "postgresql+asyncpg://app@h/db?ssl=require&PASSWORD=s3cret&x=1",
            (),
            "postgresql+asyncpg://app@h/db?ssl=require&PASSWORD=***&x=1",
            "s3cret",
        ),
        ("u:pw@nohost", URL, "u:***@nohost", "pw"),
        ("postgresql://u:p@ss@host/db", (), "postgresql://u:***@host/db", "p@ss"),
        ("u:a/b@host", URL, "u:***@host", "a/b"),
    ],
)
def test_url_passwords_are_found_and_masked(
    value: str, path: tuple[str, ...], shown: str, password: str
) -> None:
    """`user:pw@`, a `password=` query parameter, and `user:pw@host` without a scheme in a URL
    setting: each password is found and masked (a password may even hold '@')."""
    assert redact(value, path) == shown
    assert password in url_passwords(value, path)


def test_a_bare_user_password_is_masked_only_in_a_url_setting() -> None:
    """`user:pw@host` in an ordinary text field is left alone: it may be anything."""
    assert redact("u:pw@nohost", ("logging", "format")) == "u:pw@nohost"
    assert url_passwords("u:pw@nohost") == set()


def test_free_text_keeps_what_is_not_a_password() -> None:
    """Masking a URL in a sentence leaves the words and an e-mail address after it intact."""
    text = "see postgresql://u:pw@h/d and mail a@b"
    assert redact(text) == "see postgresql://u:***@h/d and mail a@b"
    quoted = "'postgresql://app@h/db?password=abc' is invalid"
    assert redact(quoted) == "'postgresql://app@h/db?password=***' is invalid"


def test_secrets_in_collects_every_kind() -> None:
    """SecretStr values, secret-named fields, URL passwords of every form (short ones are kept
    out: masking 'pw' everywhere would mangle ordinary text)."""
    leaves = [
        (("api_token",), SecretStr("tok-123")),
        (("db", "password"), "hunter22"),
        (("database", "url"), "u:bare-secret@h"),
        (("other", "url"), "postgresql://app@h/db?password=query-secret"),
        (("short", "url"), "u:pw@h"),
        (("plain",), "nothing-here"),
    ]
    assert secrets_in(leaves) == {"tok-123", "hunter22", "bare-secret", "query-secret"}


def test_secrets_of_a_model() -> None:
    """Every secret string of a settings model, to mask in logs."""

    class Model(BaseModel):
        token: SecretStr = SecretStr("model-token")
        url: str = "postgresql+asyncpg://app@h/db?password=model-pw"

    assert secrets_of(Model()) == {"model-token", "model-pw"}


def test_mask_text_masks_known_secrets_and_every_url_password() -> None:
    """Known secrets, longest first, then any URL password still in the text."""
    text = "token tok-123-long and tok-123 at redis://:pw@h and x://h/d?password=zz"
    masked = mask_text(text, {"tok-123", "tok-123-long"})
    assert masked == (
        f"token {SECRET_MASK} and {SECRET_MASK} at redis://:***@h and x://h/d?password=***"
    )


def test_redact_secret_values() -> None:
    """SecretStr and secret-named values print as the mask; an empty one as empty."""
    assert redact(SecretStr("x")) == SECRET_MASK
    assert redact(SecretStr("")) == ""
    assert redact("x", ("db_password",)) == SECRET_MASK
    assert redact(5, ("port",)) == 5


password_text = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"),
        blacklist_characters="@&;#'\"?/:",
    ),
    min_size=1,
    max_size=30,
).map(lambda s: f"Zq{s}")


@given(password=password_text)
def test_no_generated_password_survives_redaction(password: str) -> None:
    """Whatever the password, in any of the three URL forms it is gone after redaction."""
    forms = [
        (f"postgresql+asyncpg://app:{password}@127.0.0.1:5432/db", ()),
        (f"postgresql+asyncpg://app@127.0.0.1/db?ssl=require&password={password}", ()),
        (f"app:{password}@127.0.0.1/db", URL),
    ]
    for value, path in forms:
        assert password not in str(redact(value, path)), value
        assert password in url_passwords(value, path), value
        assert password not in mask_text(f"error: {redact(value, path)!r}", set()), value
