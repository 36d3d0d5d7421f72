"""The demo's ground-truth benchmark folder, built from a tiny demo scene by the pipeline stage."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from san.data.config import DemoSceneConfig
from san.data.gt_layout import read_layout
from san.pipeline.make_demo_scene import make_demo_scene

TINY = DemoSceneConfig(num_views=6, width=40, height=32, supersample=1, mesh_subdivisions=3, mesh_sections=32)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    make_demo_scene(root / "scene", TINY, benchmark_dir=root / "benchmark_gt", test_every=3)
    return root


def test_one_task_per_object_prompted_on_it(built):
    gt = json.loads((built / "scene" / "scene_gt.json").read_text())
    layout = read_layout(built / "benchmark_gt")
    assert [t.task for t in layout.tasks] == [o["name"] for o in gt["objects"]]
    for t, obj in zip(layout.tasks, gt["objects"]):
        k = int(t.reference_view.split("_")[1])
        assert k % 3 != 0  # a training view
        assert t.targets == ("view_000", "view_003")  # every test view
        ids = np.asarray(Image.open(built / "scene" / "masks" / f"{t.reference_view}.png"))
        x, y = t.points[0]
        assert ids[int(y), int(x)] == obj["id"] and t.labels.tolist() == [1]  # the click is on the object
        for v in t.targets:
            exact = np.asarray(Image.open(built / "scene" / "masks" / f"{v}.png")) == obj["id"]
            assert (layout.read_mask(t.task, v) == exact).all()
        assert (layout.root / t.mesh).is_file()
    assert layout.occluders == ("meshes/ground.ply",) and layout.surface_distance > 0


def test_bad_test_every(tmp_path):
    with pytest.raises(ValueError, match="test_every"):
        make_demo_scene(tmp_path / "scene", TINY, benchmark_dir=tmp_path / "b", test_every=1)
    assert not (tmp_path / "scene").exists()  # checked before rendering
