"""NeRFModel's contract: render_rays outputs, features accumulation, density, save / load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from san.cameras import Camera, CameraError, RayBundle, look_at
from san.config import from_dict
from san.encodings.config import HashGridConfig
from san.models.config import NeRFConfig
from san.models.nerf import NeRFModel, load_nerf, save_nerf
from san.rendering.samplers import SceneSpace
from san.rendering.volume import compute_weights
from tests.conftest import tiny_nerf_model

TINY = tiny_nerf_model(levels=3, log2_hashmap_size=10, max_resolution=32, proposal_log2_hashmap_size=8)
SPACES = {
    "forward_facing": SceneSpace("forward_facing", near=1.33, far=6.0, ndc_near=1.0, ndc_ax=1.6, ndc_ay=2.1),
    "unbounded": SceneSpace("unbounded", near=0.05, far=1000.0),
}


def _model(kind: str, sampler: str = "proposal") -> NeRFModel:
    torch.manual_seed(0)
    cfg = dict(TINY, sampler={**TINY["sampler"], "kind": sampler})
    model = NeRFModel(from_dict(NeRFConfig, cfg), SPACES[kind], "cpu")
    with torch.no_grad():  # a non-trivial density so weights are not all ~0
        model.field.encoding.params.uniform_(-1, 1)
    return model


def _rays(n: int = 12) -> RayBundle:
    g = torch.Generator().manual_seed(1)
    d = torch.randn(n, 3, generator=g) * 0.2 + torch.tensor([0.0, 0.0, 1.0])
    return RayBundle((torch.rand(n, 3, generator=g) - 0.5) * 0.2, d / d.norm(dim=-1, keepdim=True))


@pytest.mark.parametrize("kind", ["forward_facing", "unbounded"])
@pytest.mark.parametrize("sampler", ["proposal", "uniform"])
def test_render_rays_shapes_and_world_positions(kind, sampler):
    model = _model(kind, sampler).eval()
    rays = _rays()
    with torch.no_grad():
        out = model.render_rays(rays)
    N, S = 12, 8
    assert out.rgb.shape == (N, 3) and out.depth.shape == (N,) and out.accumulation.shape == (N,)
    assert out.weights.shape == (N, S) and out.positions.shape == (N, S, 3) and out.features is None
    # positions lie on the rays, in the world frame, in increasing distance
    rel = out.positions - rays.origins[:, None]
    t = (rel * rays.directions[:, None]).sum(-1)
    torch.testing.assert_close(rel, t[..., None] * rays.directions[:, None], atol=1e-4, rtol=1e-4)
    assert bool((t[:, 1:] > t[:, :-1]).all())
    assert bool((out.accumulation <= 1 + 1e-5).all())
    x = model.normalize_positions(out.positions.reshape(-1, 3))
    if kind == "unbounded":  # contraction maps everything into the grid domain
        assert bool(((x >= 0) & (x <= 1)).all())


def test_features_are_accumulated_with_the_same_weights():
    model = _model("unbounded").eval()
    rays = _rays()

    def features(p: torch.Tensor) -> torch.Tensor:
        return torch.cat([p, p.norm(dim=-1, keepdim=True)], dim=-1)

    with torch.no_grad():
        out = model.render_rays(rays, features=features)
    manual = (out.weights[..., None] * features(out.positions.reshape(-1, 3)).view(12, 8, 4)).sum(1)
    torch.testing.assert_close(out.features, manual, atol=1e-5, rtol=1e-5)
    # and the weights are those of the model's own density at those positions
    sigma = model.density(out.positions.reshape(-1, 3)).view(12, 8)
    edges = out.edges
    _, r = model.space.distances(rays, edges)
    torch.testing.assert_close(compute_weights(sigma, r[:, 1:] - r[:, :-1]), out.weights, atol=1e-5, rtol=1e-4)


def test_density_is_zero_outside_the_modelled_region():
    model = _model("forward_facing")
    pts = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 0.2], [50.0, 0.0, 2.0]])
    sigma = model.density(pts)
    assert float(sigma[0]) > 0 and float(sigma[1]) == 0 and float(sigma[2]) == 0
    box = model.bounding_box()
    assert box.shape == (2, 3) and box[0, 2] == pytest.approx(1.0) and box[1, 2] == pytest.approx(6.0)
    assert np.allclose(_model("unbounded").bounding_box(), [[-1, -1, -1], [1, 1, 1]])


def test_render_camera_and_save_load_round_trip(tmp_path):
    model = _model("unbounded")
    c2w = look_at(np.array([0.0, -0.8, 0.3]), np.zeros(3), np.array([0.0, 0.0, 1.0]))
    K = np.array([[10.0, 0, 6.0], [0, 10.0, 4.0], [0, 0, 1]])
    camera = Camera(c2w, K, 12, 8)
    img = model.render_camera(camera, chunk=37)
    assert img["rgb"].shape == (8, 12, 3) and img["depth"].shape == (8, 12) and img["accumulation"].shape == (8, 12)
    assert model.training  # render_camera restores the mode
    path = tmp_path / "model.pt"
    save_nerf(model, path)
    loaded = load_nerf(path, "cpu")
    assert loaded.config == model.config and loaded.space == model.space and not loaded.training
    img2 = loaded.render_camera(camera)
    torch.testing.assert_close(img2["rgb"], img["rgb"])
    torch.testing.assert_close(img2["depth"], img["depth"])
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary left behind


def test_render_camera_takes_one_camera():
    """``render_camera`` renders one :class:`Camera`: a batch of one is that camera, a larger batch and
    loose matrices are refused by name before anything is rendered."""
    model = _model("unbounded")
    c2w = look_at(np.array([0.0, -0.8, 0.3]), np.zeros(3), np.array([0.0, 0.0, 1.0]))
    camera = Camera(c2w, np.array([[10.0, 0, 6.0], [0, 10.0, 4.0], [0, 0, 1]]), 12, 8)
    one = model.render_camera(camera)
    batch_of_one = model.render_camera(Camera.stack([camera]))
    assert one.keys() == batch_of_one.keys() and all(torch.equal(one[k], batch_of_one[k]) for k in one)
    with pytest.raises(CameraError, match="NeRFModel.render_camera renders one camera, got a batch of 2"):
        model.render_camera(Camera.stack([camera, camera]))
    with pytest.raises(TypeError, match="NeRFModel.render_camera takes one san.cameras.Camera, got ndarray"):
        model.render_camera(c2w)


def test_load_rejects_foreign_files(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"hello": 1}, path)
    with pytest.raises(RuntimeError, match="not a san NeRF"):
        load_nerf(path, "cpu")


def test_config_rejects_mismatched_proposals():
    with pytest.raises(ValueError, match="proposal"):
        NeRFConfig(proposals=(), sampler=NeRFConfig().sampler)


def test_hash_config_defaults_follow_facts():
    grid = NeRFConfig().field.grid
    assert (grid.num_levels, grid.features_per_level, grid.log2_hashmap_size) == (16, 2, 19)
    assert isinstance(grid, HashGridConfig)


def test_load_refuses_a_model_with_non_finite_weights(tmp_path):
    """Issue 13, kind 4: a model file saved from a diverged run (before divergence was caught) is
    refused by name instead of rendering NaN downstream."""
    from san.utils.checks import NonFiniteError

    model = _model("unbounded")
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("nan")
    path = tmp_path / "model.pt"
    save_nerf(model, path)
    with pytest.raises(
        NonFiniteError,
        match=rf"^load_nerf: {path}: weight .* is not finite \(1 of \d+ values non-finite\); the NeRF diverged",
    ):
        load_nerf(path, "cpu")
