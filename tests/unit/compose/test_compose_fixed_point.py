"""`stack config` prints a file that `stack config` prints again unchanged (a fixed point).

For every compose file of the shared corpus and of compose-samples/ that loads: its output,
loaded again, gives the same output, byte for byte, as a user comparing the two would see.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from swarmlite.cli.main import cli

REPO = Path(__file__).resolve().parents[3]
ROOTS = [REPO / ".." / "shared" / "compose-corpus", REPO / "compose-samples"]
FILES = sorted(p for root in ROOTS if root.is_dir() for p in root.rglob("*.y*ml"))
# The variables the corpus's files ask for (as test_compose_corpus.py gives them).
ENV = {"CONFIG": "config-from-env", "SECRET": "secret-from-env", "MY_SECRET": "this-is-secret"}


def stack_config(path: Path) -> Result:
    return CliRunner().invoke(cli, ["stack", "config", "-c", str(path)], env=ENV)


@pytest.mark.skipif(not FILES, reason="no compose files")
def test_stack_config_output_is_a_fixed_point(tmp_path: Path) -> None:
    loaded = 0
    for i, path in enumerate(FILES):
        first = stack_config(path)
        if first.exit_code != 0:
            assert first.exit_code == 1 and first.stderr.startswith("error: "), path
            continue
        loaded += 1
        printed = tmp_path / f"{i}.yml"
        printed.write_text(first.stdout)
        second = stack_config(printed)
        assert second.exit_code == 0, f"{path}: its output is refused: {second.stderr}"
        assert second.stdout == first.stdout, path
    assert loaded >= 40  # most of the corpus and every sample load


def test_a_container_only_port_prints_without_published_and_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "compose.yml"
    path.write_text(
        "services:\n  web:\n    image: nginx\n"
        '    ports: ["5000", "8080:80", {target: 9000, published: 0}]\n'
    )

    first = stack_config(path)

    assert first.exit_code == 0, first.stderr
    assert "published: 0" not in first.stdout
    assert first.stdout.count("published:") == 1  # 8080 only
    printed = tmp_path / "printed.yml"
    printed.write_text(first.stdout)
    second = stack_config(printed)
    assert second.exit_code == 0, second.stderr
    assert second.stdout == first.stdout
