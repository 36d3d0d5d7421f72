"""Every kind of GLB ``san`` writes passes the Khronos glTF validator (npm ``gltf-validator``) with 0 errors.

Runs when ``node`` and the package are available: the package is looked up in
``$GLTF_VALIDATOR_DIR`` (a ``node_modules`` folder, e.g. after ``npm install --prefix
~/.cache/san-gltf gltf-validator``: ``GLTF_VALIDATOR_DIR=~/.cache/san-gltf/node_modules``), then in
``$NODE_PATH`` and node's own search path. Without them the test skips with the reason, except
under ``CI=true`` (``.ci/run`` installs the validator), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from san.data.scene import Normalization
from san.interaction.mesh_segmentation import export_segmentation
from san.mesh.export import write_glb, write_textured_scene, write_textured_segment
from san.mesh.texture import bake_texture

VALIDATE_JS = r"""
const validator = require('gltf-validator');
const fs = require('fs');
(async () => {
  const out = {};
  for (const f of process.argv.slice(1)) {
    const r = await validator.validateBytes(new Uint8Array(fs.readFileSync(f)));
    out[f] = {errors: r.issues.numErrors, warnings: r.issues.numWarnings,
              messages: r.issues.messages.filter(m => m.severity <= 1).map(m => m.code + ' ' + m.pointer + ': ' + m.message)};
  }
  console.log(JSON.stringify(out));
})().catch(e => { console.error(e); process.exit(2); });
"""


def _node_env() -> dict | None:
    node = shutil.which("node")
    if node is None:
        return None
    env = dict(os.environ)
    paths = [p for p in (os.environ.get("GLTF_VALIDATOR_DIR"), os.environ.get("NODE_PATH")) if p]
    env["NODE_PATH"] = os.pathsep.join(paths)
    probe = subprocess.run([node, "-e", "require.resolve('gltf-validator')"], env=env, capture_output=True)
    return env if probe.returncode == 0 else None


@pytest.fixture(scope="module")
def node_env() -> dict:
    env = _node_env()
    if env is None:
        msg = "node and the npm package gltf-validator are needed (npm install gltf-validator; set GLTF_VALIDATOR_DIR to its node_modules)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + "; under CI=true the validator must be installed")
        pytest.skip(msg)
    return env


def validate(paths: list[Path], env: dict) -> dict:
    run = subprocess.run(
        [shutil.which("node"), "-e", VALIDATE_JS, *map(str, paths)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_every_exported_glb_passes_the_khronos_validator(tmp_path, node_env):
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.8)
    tm = bake_texture(mesh, lambda p, d: (0.5 + 0.5 * p).clamp(0, 1), None, size=128, dilation=4, view="normal")
    norm = Normalization.identity()
    up = np.array([0.0, 0.0, 1.0])
    scene_dir = tmp_path / "mesh"
    write_textured_scene(
        tm, norm, scene_dir, up, {"source_scene": "synthetic", "stage": "extract_mesh", "teacher": None}
    )
    coloured = mesh.copy()
    # what decimated marching-cubes meshes contain: a zero-area face and an unused vertex (no normal)
    coloured = trimesh.Trimesh(
        np.concatenate([mesh.vertices, [[0, 0, 0.2], [0, 0, 0.3]]]),
        np.concatenate([mesh.faces, [[0, 0, len(mesh.vertices)]]]),
        process=False,
    )
    coloured.visual.vertex_colors = np.tile([200, 80, 40, 255], (len(coloured.vertices), 1)).astype(np.uint8)
    write_glb(coloured, scene_dir / "mesh.glb", up, {"stage": "extract_mesh"})
    selected = mesh.triangles_center[:, 2] > 0.2
    write_textured_segment(
        scene_dir, mesh.vertices, selected, tmp_path / "object", "segment_textured", norm, up, {"stage": "segment"}
    )
    export_segmentation(
        coloured,
        torch.as_tensor(np.append(selected, False)),
        tmp_path / "object",
        normalization=norm,
        up=up,
        metadata={"scene": "synthetic", "teacher": "toy", "untrained": True},
    )
    glbs = sorted(tmp_path.rglob("*.glb"))
    assert {p.name for p in glbs} == {
        "mesh.glb",
        "mesh_textured.glb",
        "segment_textured.glb",
        "segment.glb",
        "segment_rest.glb",
    }
    report = validate(glbs, node_env)
    for path, r in report.items():
        assert r["errors"] == 0, (path, r["messages"])
        assert r["warnings"] == 0, (path, r)
