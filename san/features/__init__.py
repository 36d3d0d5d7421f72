"""Teacher features of NeRF renderings: camera augmentation and the HDF5 feature cache."""

from san.features.augment import interpolate_pose, sample_augmented_cameras, square_camera_intrinsics
from san.features.cache import (
    FORMAT_VERSION,
    CachedView,
    FeatureCache,
    FeatureCacheError,
    FeatureCacheMeta,
    FeatureCacheWriter,
    create_feature_cache,
    open_feature_cache,
    write_feature_cache,
)

__all__ = [
    "FORMAT_VERSION",
    "CachedView",
    "FeatureCache",
    "FeatureCacheError",
    "FeatureCacheMeta",
    "FeatureCacheWriter",
    "create_feature_cache",
    "interpolate_pose",
    "open_feature_cache",
    "sample_augmented_cameras",
    "square_camera_intrinsics",
    "write_feature_cache",
]
