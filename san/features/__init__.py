"""Teacher features of NeRF renderings: camera augmentation and the HDF5 feature cache."""

import lazy_loader

# Submodules load on first use of a name (PEP 562), so that importing this package, or its light
# ``config`` module, does not import torch (every Snakemake parse reads the config classes).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "augment": ["interpolate_pose", "sample_augmented_cameras", "square_camera_intrinsics"],
        "cache": [
            "FORMAT_VERSION",
            "CachedView",
            "FeatureCache",
            "FeatureCacheError",
            "FeatureCacheMeta",
            "FeatureCacheWriter",
            "create_feature_cache",
            "open_feature_cache",
            "write_feature_cache",
        ],
    },
)
