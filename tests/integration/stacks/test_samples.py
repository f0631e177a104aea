"""compose-samples/: every sample loads without a warning and uses only the test images.

A user copies these files; the integration test and the benchmark deploy some of them on
dockerds that hold only the images `ensure_test_images` imports, so a sample naming another
image would fail there with "image not found".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlite.api import ServiceMode
from swarmlite.compose import load_stack, to_stack_deploy
from swarmlite.testing.images import TEST_IMAGES

SAMPLES = Path(__file__).resolve().parents[3] / "compose-samples"
KNOWN_IMAGES = {image.ref for image in TEST_IMAGES}


def test_there_are_samples() -> None:
    assert {p.name for p in SAMPLES.glob("*.yml")} >= {"web.yml", "shop.yml", "bench.yml"}


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.yml")))
def test_sample_loads_cleanly_with_test_images(name: str) -> None:
    loaded = load_stack([SAMPLES / name], env={})
    assert loaded.warnings == []
    specs = to_stack_deploy(loaded, "demo").services
    assert specs
    assert {s.task.container.image for s in specs} <= KNOWN_IMAGES


def test_shop_sample_has_one_service_of_each_mode() -> None:
    specs = to_stack_deploy(load_stack([SAMPLES / "shop.yml"], env={}), "shop").services
    modes = {s.name: s.mode for s in specs}
    assert modes == {
        "shop_web": ServiceMode.REPLICATED,
        "shop_agent": ServiceMode.GLOBAL,
        "shop_migrate": ServiceMode.REPLICATED_JOB,
    }


def test_bad_update_merged_over_web_changes_only_the_image() -> None:
    base = to_stack_deploy(load_stack([SAMPLES / "web.yml"], env={}), "demo").services
    merged = load_stack([SAMPLES / "web.yml", SAMPLES / "bad-update.yml"], env={})
    [web] = to_stack_deploy(merged, "demo").services
    assert web.task.container.image == "swl/web:bad"
    assert web.update_config == base[0].update_config
    assert web.update_config is not None and web.update_config.failure_action.value == "rollback"


def test_bench_sample_takes_its_replicas_from_the_environment() -> None:
    bench = load_stack([SAMPLES / "bench.yml"], env={"REPLICAS": "50"})
    [web] = to_stack_deploy(bench, "b").services
    assert web.replicas == 50
    assert web.task.restart_policy.delay == 0.0
