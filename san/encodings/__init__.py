"""Input encodings: multiresolution hash grid (torch or tiny-cuda-nn) and spherical harmonics."""

from san.encodings.hashgrid import HashGridConfig, TorchHashEncoding, make_hash_encoding
from san.encodings.sh import spherical_harmonics

__all__ = ["HashGridConfig", "TorchHashEncoding", "make_hash_encoding", "spherical_harmonics"]
