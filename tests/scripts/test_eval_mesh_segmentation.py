"""The bar script of issue 7 (a): its IoU formula and its notion of an observed surface."""

import numpy as np
import pytest
import torch

from tests.conftest import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("scripts/eval_mesh_segmentation.py")


def test_face_area_iou_hand_computed(script):
    area = np.array([1.0, 2.0, 3.0, 4.0])
    obj = np.array([True, True, True, False])
    observed = np.array([True, True, False, False])
    # Exactly the observed object faces: IoU 1.
    assert script.face_area_iou(area, observed.copy(), obj, obj & observed) == pytest.approx(1.0)
    # Also the unobserved object face (area 3): A = 6, B = 3, I = (6 + 3) / 2 = 4.5 -> 4.5 / 4.5.
    assert script.face_area_iou(area, obj.copy(), obj, obj & observed) == pytest.approx(1.0)
    # A background face (area 4) as well: A = 10, B = 3, I = (6 + 3) / 2 -> 4.5 / 8.5.
    assert script.face_area_iou(area, np.ones(4, bool), obj, obj & observed) == pytest.approx(4.5 / 8.5)
    # Only face 0: A = 1, B = 3, I = 1 -> 1 / 3.
    assert script.face_area_iou(area, np.array([True, False, False, False]), obj, obj & observed) == pytest.approx(
        1 / 3
    )
    assert script.face_area_iou(area, np.zeros(4, bool), obj, obj & observed) == 0.0


def test_edge_on_surface_is_not_observed(script):
    config = script.DemoSceneConfig()
    K = script.demo_intrinsics(config)
    c2w = script.demo_cameras(config)[0]
    origin = torch.as_tensor(c2w[:3, 3])[None]
    direction = torch.as_tensor(c2w[:3, 2])[None]  # the optical axis (OpenCV: +z forward)
    t, _, _ = script.trace_rays(origin, direction, config)
    point = (origin + 0.999 * t[:, None] * direction).numpy()
    d = direction.numpy()[0]
    side = np.cross(d, [0.0, 0.0, 1.0])
    cams = [(c2w, K)]
    facing = script.gt_observed(point, -d[None], cams, config.width, config.height, config)
    edge_on = script.gt_observed(point, side[None] / np.linalg.norm(side), cams, config.width, config.height, config)
    counted = script.gt_observed(
        point, side[None] / np.linalg.norm(side), cams, config.width, config.height, config, min_cos=0.0
    )
    assert facing.tolist() == [True]
    assert edge_on.tolist() == [False]
    assert counted.tolist() == [True]
