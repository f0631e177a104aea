"""Image references as Docker reads them: the parts of good ones, their normal and familiar
forms, and the words a user sees for a bad one."""

from __future__ import annotations

import pytest

from swarmlite.api.reference import ImageRef, parse_image
from swarmlite.errors import InvalidArgument

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [
        ("busybox", ImageRef(domain="docker.io", path="library/busybox")),
        (
            "nginx:1.27-alpine",
            ImageRef(domain="docker.io", path="library/nginx", tag="1.27-alpine"),
        ),
        ("acme/web:2", ImageRef(domain="docker.io", path="acme/web", tag="2")),
        ("docker.io/nginx", ImageRef(domain="docker.io", path="library/nginx")),
        ("index.docker.io/library/nginx", ImageRef(domain="docker.io", path="library/nginx")),
        ("ghcr.io/acme/shop/web:v2", ImageRef(domain="ghcr.io", path="acme/shop/web", tag="v2")),
        ("localhost/web", ImageRef(domain="localhost", path="web")),
        ("localhost:5000/web:1", ImageRef(domain="localhost:5000", path="web", tag="1")),
        ("10.0.0.5:5000/web", ImageRef(domain="10.0.0.5:5000", path="web")),
        ("[fd00::1]:5000/web", ImageRef(domain="[fd00::1]:5000", path="web")),
        ("Registry/web", ImageRef(domain="Registry", path="web")),  # uppercase: a host
        ("localhost:5000", ImageRef(domain="docker.io", path="library/localhost", tag="5000")),
        ("a__b-c---d/e_f.g", ImageRef(domain="docker.io", path="a__b-c---d/e_f.g")),
        ("web_1:Tag_2.x-y", ImageRef(domain="docker.io", path="library/web_1", tag="Tag_2.x-y")),
        ("web@" + DIGEST, ImageRef(domain="docker.io", path="library/web", digest=DIGEST)),
        (
            "ghcr.io/a/web:2@" + DIGEST,
            ImageRef(domain="ghcr.io", path="a/web", tag="2", digest=DIGEST),
        ),
        (
            "web@sha512:" + "ab" * 64,
            ImageRef(domain="docker.io", path="library/web", digest="sha512:" + "ab" * 64),
        ),
        ("a:" + "t" * 128, ImageRef(domain="docker.io", path="library/a", tag="t" * 128)),
    ],
)
def test_good_references_parse_into_their_parts(ref: str, parsed: ImageRef) -> None:
    assert parse_image(ref) == parsed


@pytest.mark.parametrize(
    ("ref", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("acme/web", "docker.io/acme/web:latest", "acme/web:latest"),
        ("library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
        ("ghcr.io/acme/web:2", "ghcr.io/acme/web:2", "ghcr.io/acme/web:2"),
        ("web@" + DIGEST, f"docker.io/library/web@{DIGEST}", f"web@{DIGEST}"),
        ("web:1@" + DIGEST, f"docker.io/library/web:1@{DIGEST}", f"web:1@{DIGEST}"),
    ],
)
def test_the_full_and_familiar_forms_are_those_docker_prints(
    ref: str, full: str, familiar: str
) -> None:
    image = parse_image(ref)
    assert (image.full, image.familiar) == (full, familiar)


def test_the_name_is_the_repository_without_tag_or_digest() -> None:
    image = parse_image("busybox:1@" + DIGEST)
    assert (image.name, image.familiar_name) == ("docker.io/library/busybox", "busybox")


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("", "it is empty"),
        ("BAD IMAGE", "it contains a space"),
        ("nginx:1\t", "it contains whitespace"),
        ("/swl/web:2", 'the repository name must not start with "/"'),
        ("swl/web/", 'the repository name must not end with "/"'),
        ("ghcr.io/", 'the repository name must not end with "/"'),
        ("swl//web", 'the repository name has an empty component ("//")'),
        (":2", "the repository name is empty"),
        ("@" + DIGEST, "the repository name is empty"),
        ("Busybox", "the repository name must be lowercase"),
        ("ghcr.io/Acme/web", "the repository name must be lowercase"),
        ("swl/web!", 'the repository name must not contain "!"'),
        ("swl/wéb", 'the repository name must not contain "é"'),
        (
            "swl/-web",
            'the repository name component "-web" must start and end with a letter or digit',
        ),
        (
            "swl/web.",
            'the repository name component "web." must start and end with a letter or digit',
        ),
        (
            "swl/a..b",
            'the repository name component "a..b" has the separator ".."; '
            'use one ".", one or two "_", or any number of "-"',
        ),
        (
            "a___b",
            'the repository name component "a___b" has the separator "___"; '
            'use one ".", one or two "_", or any number of "-"',
        ),
        ("web:", 'invalid tag "": it is empty'),
        ("web:.1", 'invalid tag ".1": a tag must not start with "." or "-"'),
        ("web:1+2", 'invalid tag "1+2": a tag is letters, digits, "_", "." and "-"'),
        ("web:" + "t" * 129, f'invalid tag "{"t" * 129}": a tag is at most 128 characters'),
        (
            "web@",
            'invalid digest "": expected algorithm:hex, such as sha256: and 64 hex digits',
        ),
        (
            "web@0123",
            'invalid digest "0123": expected algorithm:hex, such as sha256: and 64 hex digits',
        ),
        (
            "web@md5:" + "a" * 32,
            f'invalid digest "md5:{"a" * 32}": unsupported algorithm "md5"; '
            "use sha256, sha384 or sha512",
        ),
        (
            "web@sha256:abc",
            'invalid digest "sha256:abc": sha256 takes 64 lowercase hex digits, got "abc"',
        ),
        (
            "web@sha256:" + "A" * 64,
            f'invalid digest "sha256:{"A" * 64}": sha256 takes 64 lowercase hex digits, '
            f'got "{"A" * 64}"',
        ),
        (
            "exa_mple.com/web",
            'invalid registry "exa_mple.com": a host name is letters, digits and "-" '
            "(not first or last) between dots",
        ),
        (
            "-ghcr.io/web",
            'invalid registry "-ghcr.io": a host name is letters, digits and "-" '
            "(not first or last) between dots",
        ),
        (
            ":5000/web",
            'invalid registry ":5000": a host name is letters, digits and "-" '
            "(not first or last) between dots",
        ),
        ("localhost:http/web", 'invalid registry "localhost:http": the port must be 1-65535'),
        ("localhost:99999/web", 'invalid registry "localhost:99999": the port must be 1-65535'),
        ("localhost:/web", 'invalid registry "localhost:": the port must be 1-65535'),
        ("[fd00::g]/web", 'invalid registry "[fd00::g]": not an IPv6 address in []'),
        ("[fd00::1/web", 'invalid registry "[fd00::1": not an IPv6 address in []'),
        ("[fd00::1]5000/web", 'invalid registry "[fd00::1]5000": expected :port after ]'),
        ("a" * 64, "a 64-digit hex string is an image ID, not a repository name"),
        ("x/" + "a" * 250, "the repository name is longer than 255 characters"),
    ],
)
def test_bad_references_are_refused_naming_the_part_and_why(ref: str, why: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_image(ref)
    quoted = '"' + ref.replace("\t", "\\t") + '"'
    assert refused.value.message == f"image reference {quoted}: {why}"
    assert refused.value.hint


def test_the_length_limit_counts_the_normalised_name() -> None:
    # "docker.io/library/" + 237 = 255 characters: the most a name may have.
    parse_image("a" * 237)
    with pytest.raises(InvalidArgument, match="longer than 255 characters"):
        parse_image("a" * 238)


def test_uppercase_is_refused_with_a_hint_to_write_it_in_lowercase() -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_image("Shop/Web:2")
    assert refused.value.message == (
        'image reference "Shop/Web:2": the repository name must be lowercase'
    )
    assert refused.value.hint == "write the name in lowercase"
