"""Interactive segmentation: clicks that follow the scene in 3D, and segmented meshes.

* :mod:`~san.interaction.session`: :class:`SegmentationSession` (set a camera, click, get a mask).
* :mod:`~san.interaction.tracking`: lifting pixels to 3D and re-projecting them with a depth test.
* :mod:`~san.interaction.mesh_segmentation`: per-view mask projection (over the face-id z-buffer of
  :mod:`san.rendering.mesh_raster`), vote, export.
* :mod:`~san.interaction.prompts`, :mod:`~san.interaction.overlay`: the prompts TSV; mask and overlay PNGs.
* :mod:`~san.interaction.viewer`: ``san view``, a web viewer on the optional viser (not imported here).
"""

from san.interaction.mesh_segmentation import (
    FaceObservation,
    MeshSegmenter,
    SegmentationExport,
    export_segmentation,
    observe_faces,
    select_faces,
    split_mesh,
)
from san.interaction.session import (
    Box,
    Camera,
    Click,
    SegmentationResult,
    SegmentationSession,
    SessionError,
    ViewPrompts,
)
from san.interaction.tracking import (
    DepthTolerance,
    PointStatus,
    Reprojection,
    lift_pixels,
    reproject_points,
)

__all__ = [
    "Box",
    "Camera",
    "Click",
    "DepthTolerance",
    "FaceObservation",
    "MeshSegmenter",
    "PointStatus",
    "Reprojection",
    "SegmentationExport",
    "SegmentationResult",
    "SegmentationSession",
    "SessionError",
    "ViewPrompts",
    "export_segmentation",
    "lift_pixels",
    "observe_faces",
    "reproject_points",
    "select_faces",
    "split_mesh",
]
