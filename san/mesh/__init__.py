"""Meshes from the density field (rule ``extract_mesh``) and their Chamfer check.

* :mod:`~san.mesh.extract`: :class:`MeshConfig`, :func:`extract_mesh` (grid -> marching cubes ->
  visibility -> small pieces -> decimation -> vertex colours), :func:`to_input_frame`;
* :mod:`~san.mesh.tsdf`: depth maps rendered from the NeRF fused into a TSDF (``mesh.method: tsdf``);
* :mod:`~san.mesh.chamfer`: :func:`chamfer_distance`, :func:`evaluate_against_ground_truth`,
  :func:`load_ground_truth` (and ``evaluate_scene_against_ground_truth``, the whole scene in the
  cameras" view);
* :mod:`~san.mesh.clean`: the region the cameras see, small pieces, hole closing;
* :mod:`~san.mesh.texture`: xatlas unwrap, texture bake, padding, per-object repacking;
* :mod:`~san.mesh.export`: GLB (+Y up, normals, provenance), OBJ + MTL + PNG, frames.
"""

import lazy_loader

from san.mesh.config import MeshConfig

# Submodules load on first use of a name (PEP 562), so that importing this package, or its light
# ``config`` module, does not import torch (every Snakemake parse reads the config classes).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "chamfer": ["GroundTruth", "chamfer_distance", "evaluate_against_ground_truth", "load_ground_truth"],
        "extract": [
            "MeshExtraction",
            "extract_mesh",
            "extract_mesh_with_stats",
            "mesh_cameras",
            "mesh_config",
            "to_input_frame",
        ],
    },
)
__all__ += ["MeshConfig"]
