"""Compose's ``logging:`` reaches the service spec, and what can never work is refused at
its file:line."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from swarmlite.api.service import LogDriver
from swarmlite.compose import load_stack, to_stack_deploy

from .test_compose_errors import error_of as compose_error_of

COMPOSE = """\
services:
  web:
    image: shop/web:1
    logging:
      driver: json-file
      options:
        max-size: 1m
        max-file: 3
        compress: true
  api:
    image: shop/api:1
    logging:
      options: {max-size: 5m}
  worker:
    image: shop/worker:1
    logging: {driver: syslog, options: {syslog-address: "udp://10.0.0.1:514", tag: w}}
  quiet:
    image: shop/quiet:1
    logging: {driver: none}
  plain:
    image: shop/plain:1
"""


def deployed(tmp_path: Path, text: str = COMPOSE) -> dict[str, LogDriver | None]:
    (tmp_path / "compose.yml").write_text(dedent(text))
    stack = load_stack([tmp_path / "compose.yml"], env={})
    return {s.name: s.task.log_driver for s in to_stack_deploy(stack, "shop").services}


def test_logging_reaches_the_spec_with_options_as_text(tmp_path: Path) -> None:
    drivers = deployed(tmp_path)
    assert drivers["shop_web"] == LogDriver(
        name="json-file", options={"max-size": "1m", "max-file": "3", "compress": "true"}
    )
    # no driver: the default driver with these options, as `docker stack deploy` sends it
    assert drivers["shop_api"] == LogDriver(name="", options={"max-size": "5m"})
    assert drivers["shop_worker"] == LogDriver(
        name="syslog", options={"syslog-address": "udp://10.0.0.1:514", "tag": "w"}
    )
    assert drivers["shop_quiet"] == LogDriver(name="none")
    assert drivers["shop_plain"] is None  # the default (api.logdriver): rotated json-file


def test_logging_is_no_longer_a_warning_and_config_loads_back(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(COMPOSE)
    stack = load_stack([tmp_path / "compose.yml"], env={})
    assert not [w for w in stack.warnings if "logging" in str(w)]
    again_path = tmp_path / "again.yml"
    again_path.write_text(stack.to_yaml())
    assert load_stack([again_path], env={}) == stack


def test_an_override_file_adds_options_to_the_driver_of_the_base(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(
        "services:\n  web:\n    image: nginx\n    logging: {driver: syslog, options: {tag: web}}\n"
    )
    (tmp_path / "prod.yml").write_text(
        "services:\n  web:\n    logging:\n      options: {syslog-address: 'udp://10.0.0.1:514'}\n"
    )
    stack = load_stack([tmp_path / "compose.yml", tmp_path / "prod.yml"], env={})
    (spec,) = to_stack_deploy(stack, "shop").services
    assert spec.task.log_driver == LogDriver(
        name="syslog", options={"tag": "web", "syslog-address": "udp://10.0.0.1:514"}
    )


def error_of(tmp_path: Path, logging: str) -> str:
    text = f"services:\n  web:\n    image: nginx\n    logging:\n{logging}"
    return compose_error_of(tmp_path, text)


REFUSED = {
    "a size that is not one": (
        "      driver: json-file\n      options:\n        max-size: 10q\n",
        'compose.yml:7:19: services.web.logging.options.max-size must be a size such as "10m" '
        'or "1g", got "10q"',
    ),
    "an empty driver": (
        '      driver: ""\n',
        "compose.yml:5:15: services.web.logging.driver must not be empty",
    ),
    "an option json-file does not have": (
        "      driver: json-file\n      options: {max-sise: 10m}\n",
        "compose.yml:6:27: services.web.logging.options.max-sise is not an option of the "
        "json-file driver (it has compress, env, env-regex, labels, labels-regex, max-buffer-"
        "size, max-file, max-size, mode, tag)",
    ),
    "no files to compress": (
        "      driver: json-file\n      options: {max-size: 1m, compress: 'true'}\n",
        "compose.yml:6:41: services.web.logging.options.compress needs max-size and a max-file "
        "of 2 or more (files to compress)",
    ),
    "a max-file below 1 (no driver named)": (
        "      options:\n        max-file: 0\n",
        "compose.yml:6:19: services.web.logging.options.max-file must be a whole number of at "
        'least 1, got "0"',
    ),
    "a key logging does not have": (
        "      driver: json-file\n      opts: {}\n",
        "compose.yml:6:7: services.web.logging.opts is not a known key (allowed here: driver, "
        "options)",
    ),
    "options as a list": (
        "      options: [max-size=1m]\n",
        "compose.yml:5:16: services.web.logging.options must be a mapping",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_can_never_work_is_refused_at_its_line(tmp_path: Path, case: str) -> None:
    logging, expected = REFUSED[case]
    assert error_of(tmp_path, logging).startswith(expected)
