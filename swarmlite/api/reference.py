"""Image references as Docker reads them: ``[registry[:port]/]path[:tag][@digest]``.

Owns the grammar of distribution/reference (what ``docker pull`` accepts) and its normal
forms: a reference without a registry is on ``docker.io``, a one-component path there is
under ``library/``, and a reference with neither tag nor digest means ``:latest``.
``parse_image`` explains a refusal in words: which part is wrong and why.

- registry: host names of letters, digits and inner ``-`` joined by dots, or an IPv6
  address in brackets, then an optional port. The first path component is the registry
  only when it has a ``.`` or a ``:``, is ``localhost``, or has an uppercase letter.
- path: lowercase components of letters and digits joined by ``.``, ``_``, ``__`` or
  any number of ``-``, separated by ``/``; with the registry at most 255 characters.
- tag: up to 128 of letters, digits, ``_``, ``.``, ``-``, not starting with ``.``/``-``.
- digest: ``algorithm:hex``: sha256 (64 lowercase hex digits), sha384 (96), sha512 (128).

Stricter than Docker in one place: a registry port must be 1-65535 (Docker's grammar
takes any digits, and no pull can succeed from such a port). Pure: no I/O.
"""

from __future__ import annotations

import json
import re

import msgspec

from swarmlite.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
MAX_NAME = 255  # registry and path together, as normalised
MAX_TAG = 128
DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

_HINT = (
    "an image reference is [registry[:port]/]name[:tag][@digest], "
    "e.g. nginx:1.27 or ghcr.io/acme/web:2"
)
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_SEPARATOR = re.compile(r"[._-]+")
_GOOD_SEPARATOR = re.compile(r"[._]|__|-+")
_HOST_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_IPV6 = re.compile(r"[A-Fa-f0-9:]+")
_TAG = re.compile(r"\w[\w.-]*", re.ASCII)
_ALGORITHM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*")
_IMAGE_ID = re.compile(r"[a-f0-9]{64}")


class ImageRef(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One parsed reference; ``domain`` and ``path`` normalised, ``tag`` as written."""

    domain: str  # "docker.io" when the reference names no registry
    path: str  # "library/busybox"
    tag: str = ""  # "" when none was written
    digest: str = ""  # "sha256:<64 hex digits>" or ""

    @property
    def name(self) -> str:
        """The repository in full: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository as Docker prints it: ``busybox``, ``acme/web``, ``ghcr.io/a/b``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        rest = self.path.removeprefix(OFFICIAL_PREFIX)
        return rest if rest != self.path and "/" not in rest else self.path

    @property
    def full(self) -> str:
        """``docker.io/library/busybox:latest``: every part spelled out."""
        return self.name + self._suffix()

    @property
    def familiar(self) -> str:
        """``busybox:latest``: as ``docker service ls`` shows it."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        tag = self.tag or ("" if self.digest else "latest")
        return (f":{tag}" if tag else "") + (f"@{self.digest}" if self.digest else "")


def parse_image(ref: str) -> ImageRef:
    """``ref`` parsed; InvalidArgument naming the offending part and why otherwise."""
    if not ref:
        raise _refuse(ref, "it is empty")
    if any(c.isspace() for c in ref):
        raise _refuse(ref, "it contains a space" if " " in ref else "it contains whitespace")
    if _IMAGE_ID.fullmatch(ref):
        raise _refuse(ref, "a 64-digit hex string is an image ID, not a repository name")
    rest, at, digest = ref.partition("@")
    if at:
        _check_digest(ref, digest)
    tag = ""
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1 :]
        _check_tag(ref, tag)
    domain, path = _split_domain(ref, rest)
    _check_path(ref, path)
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    if len(domain) + 1 + len(path) > MAX_NAME:
        raise _refuse(ref, f"the repository name is longer than {MAX_NAME} characters")
    return ImageRef(domain=domain, path=path, tag=tag, digest=digest)


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _refuse(ref: str, why: str, hint: str = _HINT) -> InvalidArgument:
    return InvalidArgument(f"image reference {_quoted(ref)}: {why}", hint=hint)


def _split_domain(ref: str, name: str) -> tuple[str, str]:
    """(registry, path) of ``name`` (the reference without tag and digest)."""
    if not name:
        raise _refuse(ref, "the repository name is empty")
    if name.startswith("/"):
        raise _refuse(ref, 'the repository name must not start with "/"')
    if name.endswith("/"):
        raise _refuse(ref, 'the repository name must not end with "/"')
    if "//" in name:
        raise _refuse(ref, 'the repository name has an empty component ("//")')
    first, slash, rest = name.partition("/")
    is_domain = "." in first or ":" in first or first == "localhost" or first.lower() != first
    if not slash or not is_domain:
        return DEFAULT_DOMAIN, name
    _check_domain(ref, first)
    return first, rest


def _check_domain(ref: str, domain: str) -> None:
    if domain.startswith("["):
        address, bracket, after = domain[1:].partition("]")
        if not bracket or not _IPV6.fullmatch(address):
            raise _refuse(ref, f"invalid registry {_quoted(domain)}: not an IPv6 address in []")
        if after and not after.startswith(":"):
            raise _refuse(ref, f"invalid registry {_quoted(domain)}: expected :port after ]")
        colon, port = after[:1], after[1:]
    else:
        host, colon, port = domain.partition(":")
        if not all(_HOST_PART.fullmatch(part) for part in host.split(".")):
            raise _refuse(
                ref,
                f"invalid registry {_quoted(domain)}: a host name is letters, digits and "
                '"-" (not first or last) between dots',
            )
    if colon and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise _refuse(ref, f"invalid registry {_quoted(domain)}: the port must be 1-65535")


def _check_path(ref: str, path: str) -> None:
    if path.lower() != path:
        raise _refuse(
            ref, "the repository name must be lowercase", hint="write the name in lowercase"
        )
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise _refuse(ref, _component_problem(component))


def _component_problem(component: str) -> str:
    """Why ``component`` (a lowercase, non-empty path component) is not valid."""
    for char in component:
        if not (char.isascii() and (char.isalnum() or char in "._-")):
            return f"the repository name must not contain {_quoted(char)}"
    if component[0] in "._-" or component[-1] in "._-":
        return (
            f"the repository name component {_quoted(component)} must start and end "
            "with a letter or digit"
        )
    bad = next(s for s in _SEPARATOR.findall(component) if not _GOOD_SEPARATOR.fullmatch(s))
    return (
        f"the repository name component {_quoted(component)} has the separator "
        f'{_quoted(bad)}; use one ".", one or two "_", or any number of "-"'
    )


def _check_tag(ref: str, tag: str) -> None:
    if _TAG.fullmatch(tag) and len(tag) <= MAX_TAG:
        return
    if not tag:
        why = "it is empty"
    elif len(tag) > MAX_TAG:
        why = f"a tag is at most {MAX_TAG} characters"
    elif tag[0] in ".-":
        why = 'a tag must not start with "." or "-"'
    else:
        why = 'a tag is letters, digits, "_", "." and "-"'
    raise _refuse(ref, f"invalid tag {_quoted(tag)}: {why}")


def _check_digest(ref: str, digest: str) -> None:
    algorithm, colon, encoded = digest.partition(":")
    if not colon or not _ALGORITHM.fullmatch(algorithm) or not encoded:
        raise _refuse(
            ref,
            f"invalid digest {_quoted(digest)}: expected algorithm:hex, "
            "such as sha256: and 64 hex digits",
        )
    length = DIGEST_LENGTHS.get(algorithm)
    if length is None:
        raise _refuse(
            ref,
            f"invalid digest {_quoted(digest)}: unsupported algorithm {_quoted(algorithm)}; "
            "use sha256, sha384 or sha512",
        )
    if len(encoded) != length or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise _refuse(
            ref,
            f"invalid digest {_quoted(digest)}: {algorithm} takes {length} lowercase hex "
            f"digits, got {_quoted(encoded)}",
        )
