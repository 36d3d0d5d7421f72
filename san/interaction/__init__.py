"""Interactive segmentation: clicks that follow the scene in 3D, and segmented meshes.

* :mod:`~san.interaction.session`: :class:`SegmentationSession` (set a camera, click, get a mask).
* :mod:`~san.interaction.tracking`: lifting pixels to 3D and re-projecting them with a depth test.
* :mod:`~san.interaction.mesh_segmentation`: per-view mask projection (over the face-id z-buffer of
  :mod:`san.rendering.mesh_raster`), vote, export.
* :mod:`~san.interaction.prompts`, :mod:`~san.interaction.overlay`: the prompts TSV; mask and overlay PNGs.
* :mod:`~san.interaction.viewer`: ``san view``, a web viewer on the optional viser (not imported here).
"""

import lazy_loader

# Submodules load on first use of a name (PEP 562), so that importing this package, or its light
# ``config`` module, does not import torch (every Snakemake parse reads the config classes).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "mesh_segmentation": [
            "FaceObservation",
            "MeshSegmenter",
            "SegmentationExport",
            "export_segmentation",
            "observe_faces",
            "select_faces",
            "split_mesh",
        ],
        "session": [
            "Box",
            "Camera",
            "Click",
            "SegmentationResult",
            "SegmentationSession",
            "SessionError",
            "ViewPrompts",
        ],
        "tracking": ["DepthTolerance", "PointStatus", "Reprojection", "lift_pixels", "reproject_points"],
    },
)
