"""Secrets: finding them in settings, masking them in text, redacting values for display.

One module that every output path uses (logging, the report, CLI errors, config show), so a secret
is recognised the same way everywhere: a `SecretStr`/`SecretBytes` value, the value of a field whose
name says it is secret (``password``, ``token``, ...), and the password of any URL: ``user:pw@``, a
``password=`` query parameter, and ``user:pw@host`` without a scheme in a URL setting (``url``,
``*_url``, ``dsn``, ...).

The one masking path: `remember` the secrets of the loaded settings once (`setup_logging` does),
then every output of the process passes its text through `mask`: log records (message, fields,
the rendered traceback), the ``--report`` file, CLI errors, wording that embeds an exception text.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = (
    "SECRET_MASK",
    "Masker",
    "Path_",
    "flatten",
    "is_secret_key",
    "is_url_key",
    "mask",
    "mask_text",
    "redact",
    "remember",
    "secrets_in",
    "secrets_of",
    "url_passwords",
)

Path_ = tuple[str, ...]

SECRET_MASK = "**********"  # noqa: S105 (the mask, not a secret)
# A password may hold "@" as long as another "@" follows it in the same word: the last one ends it.
_PW = r"(?P<pw>(?:[^@\s]|@(?=[^@\s]*@))+)"
# A scheme never starts right after a letter (the match would start at that letter): the
# lookbehind lets the engine skip the inside of every word at once, which keeps masking fast.
_SCHEME = r"(?<![A-Za-z])[A-Za-z][A-Za-z0-9+.\-]*://"
_URL_PASSWORD = re.compile(r"(?P<head>" + _SCHEME + r"[^:/@\s]*:)" + _PW + r"(?P<at>@)")
_QUERY_PASSWORD = re.compile(
    r"(?P<head>" + _SCHEME + r"[^\s?#'\"]*\?(?:[^\s#'\"]*?[&;])?"
    r"(?:password|passwd|pwd)=)(?P<pw>[^&;#\s'\"]+)",
    re.IGNORECASE,
)
_BARE_PASSWORD = re.compile(r"^(?P<head>\s*[^:/@\s]*:)" + _PW + r"(?P<at>@)")  # user:pw@host
_URL_WORDS = ("url", "uri", "dsn")
_SECRET_WORDS = ("password", "passwd", "secret", "token", "api_key", "apikey", "private_key")
_SHORTEST = 3  # shorter strings are too common to mask without mangling ordinary text


def flatten(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Leaves of nested dicts as (path, value); an empty dict is a leaf."""
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            yield from flatten(v, (*path, str(k)))
    else:
        yield path, value


def is_secret_key(path: Path_) -> bool:
    """Whether the last part of a dotted key names a secret (``password``, ``api_key``, ...)."""
    return bool(path) and any(word in path[-1].lower() for word in _SECRET_WORDS)


def is_url_key(path: Path_) -> bool:
    """Whether the last part of a dotted key names a URL (``url``, ``redis_url``, ``dsn``, ...)."""
    name = path[-1].lower() if path else ""
    return any(name == word or name.endswith(f"_{word}") for word in _URL_WORDS)


def url_passwords(text: str, path: Path_ = ()) -> set[str]:
    """The passwords of every URL in ``text``: ``scheme://user:password@``, ``?password=``, and
    ``user:password@host`` without a scheme when ``path`` names a URL setting."""
    found = {m["pw"] for m in _URL_PASSWORD.finditer(text)}
    found.update(m["pw"] for m in _QUERY_PASSWORD.finditer(text))
    if is_url_key(path) and "://" not in text:
        found.update(m["pw"] for m in _BARE_PASSWORD.finditer(text))
    return found


def _mask_urls(text: str, path: Path_ = ()) -> str:
    # each pattern runs only when the characters it needs are there (the hot path of logging)
    if "@" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m['head']}***{m['at']}", text)
    if "?" in text and "=" in text:
        text = _QUERY_PASSWORD.sub(lambda m: f"{m['head']}***", text)
    if is_url_key(path) and "://" not in text:
        text = _BARE_PASSWORD.sub(lambda m: f"{m['head']}***{m['at']}", text)
    return text


_SECRET_TYPES = frozenset({"SecretStr", "SecretBytes"})


def _is_secret(value: Any) -> bool:
    """A pydantic ``SecretStr``/``SecretBytes`` (pydantic is imported only once one may be)."""
    from pydantic import SecretBytes, SecretStr

    return isinstance(value, SecretStr | SecretBytes)


def redact(value: Any, path: Path_ = ()) -> Any:
    """A value safe to print: secrets masked, passwords in URLs masked (``path`` is its key)."""
    if type(value).__name__ in _SECRET_TYPES and _is_secret(value):
        return SECRET_MASK if value.get_secret_value() else ""
    if is_secret_key(path) and value:
        return SECRET_MASK
    if isinstance(value, str):
        return _mask_urls(value, path)
    return value


def secrets_in(
    leaves: Iterable[tuple[Path_, Any]], secret_field: Callable[[Path_], bool] = lambda _: False
) -> set[str]:
    """The secret strings among ``leaves``: SecretStr values, values of secret fields or secret
    names, and passwords in URLs."""
    found: set[str] = set()
    for path, value in leaves:
        if type(value).__name__ == "SecretStr" and _is_secret(value):
            found.add(value.get_secret_value())
        elif isinstance(value, str) and value:
            if is_secret_key(path) or secret_field(path):
                found.add(value)
            found.update(url_passwords(value, path))
    return {s for s in found if len(s) >= _SHORTEST}


def secrets_of(settings: BaseModel) -> set[str]:
    """Every secret string in ``settings`` (SecretStr values, passwords in URLs), to mask."""
    return secrets_in(flatten(settings.model_dump(mode="python")))


def mask_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every one of ``secrets`` and every URL password replaced by the mask."""
    return Masker(secrets)(text)


# -- the one masking path -------------------------------------------------------------------------


_LINE_SHORTEST = 8  # a line of a multi-line secret shorter than this is too common to mask


def written_forms(secret: str) -> set[str]:
    """The ways ``secret`` can appear in a text: as it is, URL-quoted and unquoted, escaped as
    ``repr()`` and JSON write it (backslashes, quotes, newlines; twice, for a repr inside a repr
    or JSON inside a log record), and each line of a multi-line secret (a PEM key)."""
    forms = {secret, unquote(secret), quote(secret, safe="")}
    for _ in range(2):
        forms |= {escaped for form in forms for escaped in _escaped(form)}
    lines = {line.strip() for line in secret.splitlines()} if "\n" in secret else set()
    return forms | {line for line in lines if len(line) >= _LINE_SHORTEST}


def _escaped(text: str) -> tuple[str, ...]:
    return (repr(text)[1:-1], json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1])


class Masker:
    """Masks a fixed set of secret strings, and the password of any URL, in a text.

    Each secret is also masked in its URL-quoted and unquoted forms (``p%40ss`` in a URL is
    ``p@ss`` in a driver's error). The fast path: a text that holds none of the secrets and no
    ``://`` costs one substring test per secret and is returned as it is.
    """

    __slots__ = ("secrets",)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        found: set[str] = set()
        for secret in secrets:
            found.update(written_forms(secret))
        # longest first, so a secret that contains another is masked whole
        self.secrets: tuple[str, ...] = tuple(
            sorted((s for s in found if len(s) >= _SHORTEST), key=len, reverse=True)
        )

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, SECRET_MASK)
        if "://" in text:
            text = str(redact(text))
        return text


_remembered: set[str] = set()
_masker = Masker()
_masker_lock = threading.Lock()


def remember(secrets: Iterable[str]) -> None:
    """Mask ``secrets`` too, from now on, in everything `mask` sees in this process.

    Secrets only accumulate: a process that ran several applications still masks the first one's.
    """
    global _masker
    with _masker_lock:
        _remembered.update(secrets)
        _masker = Masker(_remembered)


def mask(text: str) -> str:
    """``text`` safe to print: every `remember`-ed secret and every URL password masked."""
    return _masker(text)
