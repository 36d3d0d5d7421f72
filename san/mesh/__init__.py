"""Meshes from the density field (rule ``extract_mesh``) and their Chamfer check.

* :mod:`~san.mesh.extract`: :class:`MeshConfig`, :func:`extract_mesh` (grid -> marching cubes ->
  visibility -> small pieces -> decimation -> vertex colours), :func:`to_input_frame`;
* :mod:`~san.mesh.chamfer`: :func:`chamfer_distance`, :func:`evaluate_against_ground_truth`,
  :func:`load_ground_truth`.
"""

from san.mesh.chamfer import GroundTruth, chamfer_distance, evaluate_against_ground_truth, load_ground_truth
from san.mesh.extract import (
    MeshCamera,
    MeshConfig,
    MeshExtraction,
    extract_mesh,
    extract_mesh_with_stats,
    mesh_cameras,
    mesh_config,
    to_input_frame,
)

__all__ = [
    "GroundTruth",
    "MeshCamera",
    "MeshConfig",
    "MeshExtraction",
    "chamfer_distance",
    "evaluate_against_ground_truth",
    "extract_mesh",
    "extract_mesh_with_stats",
    "load_ground_truth",
    "mesh_cameras",
    "mesh_config",
    "to_input_frame",
]
