"""UV texture maps for an extracted mesh: xatlas unwrap, texel rasterisation, bake, border padding.

Steps (:func:`bake_texture` chains 1-3 and 5; :func:`refine_texture`, step 4, runs on its result):

1. **Unwrap** (:func:`unwrap`): ``xatlas`` (the binding of the xatlas library, as used by
   NeRF2Mesh, nvdiffrec and Blender add-ons) cuts the mesh into charts and packs them into a square
   atlas of about ``size x size`` texels with ``padding`` texels between charts. xatlas splits vertices
   along seams, so the atlas has its own vertex list (``vmapping`` maps it back to the mesh's);
   faces keep their count and order, so a face selection on the mesh (mesh segmentation) applies
   to the atlas unchanged.
2. **Texel rasterisation** (:func:`rasterize_uv`): every texel centre inside a triangle of the atlas
   gets that face's id and barycentric coordinates, hence a 3D point on the surface.
3. **Bake**: every covered texel gets the NeRF's colour at its surface point. Three rules
   (``view``), the first the default:

   - ``train_ray``: the colour the NeRF renders (``ray_fn``: full volume rendering) along the ray
     from the **best training camera** through the point: the camera whose image contains the
     point unoccluded (depth test against the mesh) and sees it most head-on
     (:func:`best_training_rays`). So the texel shows what that training view shows at that spot,
     which also absorbs the mesh's own geometric error along that line of sight; the view
     direction is that camera's. Points no camera sees (hidden, or the underside of a thin
     surface) get the short-ray colour along ``-n`` (as ``normal``): on the demo scene they are 72 %
     of the texels, and rendering them along the rays of the cameras whose images hold them
     instead cost 3.5x the render time for no PSNR (20.56 vs 20.59 dB).
   - ``mean_train_view``: ``color_fn(point, direction)`` (a short ray through the point, as vertex
     colours), with the direction, per face, the **average of the training cameras' viewing
     directions** ``normalize(sum_c unit(centre - o_c))`` over the cameras whose image contains the
     face's centre and that face its front side (occlusion not tested); faces seen by none look
     along ``-n``.
   - ``normal``: ``color_fn(point, -n)`` (a head-on, "diffuse-like" view; the field has no separate
     diffuse term).

   Measured on the demo scene (1e5-face mesh, test views, PSNR on the mesh's pixels):
   ``train_ray`` 20.6 dB, ``mean_train_view`` 19.2 dB, ``normal`` 19.3 dB, vertex colours 19.3 dB
   (``benchmarks/bench_texture_psnr.py``): a short ray at the mesh point inherits the mesh's
   geometric error, a camera ray does not.
4. **Refinement** (optional, :func:`refine_texture`): the texture is fitted to the training photos
   by least squares through the mesh's per-pixel UV lookups (geometry fixed).
5. **Padding** (:func:`dilate`): empty texels within ``dilation`` texels of a covered one take the
   colour of the nearest covered texel (Euclidean distance transform), so bilinear filtering and
   mip-mapping at chart borders do not bleed the background into the surface.

UV convention: ``uv`` in ``[0, 1]^2`` with ``v`` pointing *up* the image (OBJ / trimesh
convention: texel row ``r`` of an ``H``-row image spans ``v`` in ``[1 - (r + 1) / H, 1 - r / H]``).
trimesh flips ``v`` when it writes glTF, whose origin is the image's top-left.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Literal, NamedTuple, Sequence

import numpy as np
import torch
import trimesh

from san.cameras import Camera, project_points
from san.data.scene import Frame
from san.mesh.extract import view_distortion

log = logging.getLogger("san")

ColorFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(points Px3, unit view directions Px3) -> rgb Px3`` in ``[0, 1]`` (same as :mod:`san.mesh.extract`)."""

RayFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(origins Nx3, unit directions Nx3) -> rgb Nx3`` in ``[0, 1]``: a whole ray rendered (a NeRF's
volume rendering of a camera ray)."""


@dataclass(frozen=True)
class UVAtlas:
    """A mesh's UV atlas.

    Attributes:
        vmapping: ``V'`` int64, the mesh vertex each atlas vertex copies (seams duplicate vertices).
        faces: ``Fx3`` int64 atlas-vertex indices, same face order as the mesh.
        uv: ``V'x2`` float32 in ``[0, 1]`` (module docstring's convention).
        width, height: the atlas's size in texels.
    """

    vmapping: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    width: int
    height: int

    def save(self, path) -> None:
        """Write the atlas as an ``.npz`` (arrays ``vmapping``, ``faces``, ``uv``, ``width``, ``height``)."""
        np.savez_compressed(
            path,
            vmapping=self.vmapping,
            faces=self.faces,
            uv=self.uv,
            width=np.int64(self.width),
            height=np.int64(self.height),
        )

    @classmethod
    def load(cls, path) -> "UVAtlas":
        with np.load(path) as d:
            return cls(
                d["vmapping"].astype(np.int64),
                d["faces"].astype(np.int64),
                d["uv"].astype(np.float32),
                int(d["width"]),
                int(d["height"]),
            )


@dataclass
class TexturedMesh:
    """A mesh, its atlas and its ``height x width x 3`` uint8 texture image; ``stats`` holds coverage
    and timings of :func:`bake_texture`."""

    mesh: trimesh.Trimesh
    atlas: UVAtlas
    image: np.ndarray
    stats: dict = field(default_factory=dict)

    def to_trimesh(self, vertices: np.ndarray | None = None) -> trimesh.Trimesh:
        """The textured ``trimesh.Trimesh`` (atlas vertices; ``vertices`` ``Vx3`` replaces the
        mesh's own, e.g. the input-frame positions)."""
        return textured_trimesh(self.mesh.vertices if vertices is None else vertices, self.atlas, self.image)


def textured_trimesh(
    vertices: np.ndarray, atlas: UVAtlas, image: np.ndarray, face_mask: np.ndarray | None = None, crop: bool = False
) -> trimesh.Trimesh:
    """A ``trimesh.Trimesh`` with ``TextureVisuals`` from mesh ``vertices`` (``Vx3``, indexed by
    ``atlas.vmapping``), the atlas and a ``HxWx3`` uint8 image.

    ``face_mask`` (``F`` bool) keeps only those faces (unused atlas vertices dropped). ``crop`` cuts
    the image down to the texel rectangle the kept faces use (plus 2 texels), remapping their UVs:
    a segmented object's texture is then its own part of the scene's texture.
    """
    from PIL import Image

    faces, uv = atlas.faces, atlas.uv.astype(np.float64)
    if face_mask is not None:
        faces = faces[np.asarray(face_mask, dtype=bool)]
    used, inverse = np.unique(faces.reshape(-1), return_inverse=True)
    faces = inverse.reshape(-1, 3)
    uv = uv[used]
    verts = np.asarray(vertices, dtype=np.float64)[atlas.vmapping[used]]
    if crop and len(uv):
        h, w = image.shape[:2]
        col, row = uv[:, 0] * w, (1.0 - uv[:, 1]) * h
        c0, c1 = max(0, int(np.floor(col.min())) - 2), min(w, int(np.ceil(col.max())) + 2)
        r0, r1 = max(0, int(np.floor(row.min())) - 2), min(h, int(np.ceil(row.max())) + 2)
        image = image[r0:r1, c0:c1]
        uv = np.stack([(col - c0) / (c1 - c0), 1.0 - (row - r0) / (r1 - r0)], axis=1)
    visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(np.ascontiguousarray(image[..., :3])))
    return trimesh.Trimesh(verts, faces, visual=visual, process=False)


def spatial_blocks(mesh: trimesh.Trimesh, max_faces: int) -> list[np.ndarray]:
    """Face indices split into blocks of at most ``max_faces`` faces by recursive median
    bisection of the face centres along the longest extent (spatially compact blocks)."""
    centres = np.asarray(mesh.triangles_center, dtype=np.float64)
    out, todo = [], [np.arange(len(mesh.faces))]
    while todo:
        idx = todo.pop()
        if len(idx) <= max_faces:
            out.append(idx)
            continue
        axis = int(np.argmax(np.ptp(centres[idx], axis=0)))
        order = idx[np.argsort(centres[idx, axis], kind="stable")]
        todo += [order[: len(order) // 2], order[len(order) // 2 :]]
    return sorted(out, key=lambda b: int(b[0]) if len(b) else 0)


def unwrap(
    mesh: trimesh.Trimesh,
    size: int = 1024,
    padding: int = 2,
    block_faces: int = 8192,
    texels_per_unit: float | None = None,
) -> UVAtlas:
    """xatlas charts packed into one atlas of about ``size x size`` texels.

    The mesh goes to xatlas in spatial blocks of at most ``block_faces`` faces
    (:func:`spatial_blocks`), each added as its own xatlas mesh and all packed into one atlas.
    Reason, measured with xatlas 0.0.11: a single closed surface of 80k faces (an icosphere)
    crashes xatlas's chart computation (segmentation fault) and 80k faces in 4 pieces took 16 s,
    while the same sphere in blocks of 8192 faces unwraps in 0.2 s. Block borders become chart
    seams.

    Atlas size: xatlas picks a texel density (texels per unit length) for an atlas of ``size``
    texels a side, then grows the atlas until every chart fits with ``padding`` texels around it.
    Extracted meshes are split into many small charts (measured on the demo scene's 1e5-face mesh:
    about 15 000 charts, atlas 1.5-1.8 ``size`` a side), so the atlas is used at xatlas's own
    ``width x height`` (the texel density asked for is kept and the padding stays intact).
    ``texels_per_unit`` (texels per unit of length) fixes the density instead of ``size``.

    Raises:
        ImportError: naming the ``xatlas`` package when it is missing.
        ValueError: xatlas produced more than one atlas page.
    """
    try:
        import xatlas
    except ImportError as e:  # pragma: no cover - xatlas is a core dependency
        raise ImportError(
            "UV unwrapping needs the 'xatlas' package (pip install xatlas), or set mesh.texture: false"
        ) from e
    faces_all = np.asarray(mesh.faces, dtype=np.int64)
    verts = np.asarray(mesh.vertices, dtype=np.float32)
    blocks = spatial_blocks(mesh, block_faces)
    atlas = xatlas.Atlas()
    used_per_block = []
    for b in blocks:
        used, inverse = np.unique(faces_all[b].reshape(-1), return_inverse=True)
        used_per_block.append(used)
        atlas.add_mesh(np.ascontiguousarray(verts[used]), np.ascontiguousarray(inverse.reshape(-1, 3), dtype=np.uint32))
    pack = xatlas.PackOptions()
    if texels_per_unit:
        pack.texels_per_unit = float(texels_per_unit)
    else:
        pack.resolution = int(size)
    pack.padding = int(padding)
    pack.bilinear = True
    atlas.generate(xatlas.ChartOptions(), pack)
    if atlas.atlas_count != 1:
        raise ValueError(f"xatlas packed the charts into {atlas.atlas_count} atlases; expected 1")
    vmaps, faces, uvs = [], np.empty((len(faces_all), 3), dtype=np.int64), []
    offset = 0
    for i, (b, used) in enumerate(zip(blocks, used_per_block)):
        vmapping, f, uv = atlas[i]
        if len(f) != len(b):
            raise ValueError(f"xatlas returned {len(f)} faces for a block of {len(b)}")
        vmaps.append(used[vmapping.astype(np.int64)])
        faces[b] = f.astype(np.int64) + offset
        uvs.append(uv)
        offset += len(vmapping)
    return UVAtlas(
        np.concatenate(vmaps), faces, np.concatenate(uvs).astype(np.float32), int(atlas.width), int(atlas.height)
    )


def rasterize_uv(atlas: UVAtlas, max_candidates: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """Which face covers each texel centre of the atlas.

    Returns:
        ``(face HxW int64, -1 where no face; bary HxWx3 float32)`` for the atlas's ``height x width``. A texel centre
        on an edge shared by two faces goes to one of them; charts never overlap (xatlas packing).
    """
    w, h = atlas.width, atlas.height
    # texel-centre coordinates: column x = u w - 0.5, row y = (1 - v) h - 0.5
    pts = np.stack([atlas.uv[:, 0] * w - 0.5, (1.0 - atlas.uv[:, 1]) * h - 0.5], axis=1).astype(np.float64)
    tri = pts[atlas.faces]  # F x 3 x 2
    x0 = np.clip(np.ceil(tri[..., 0].min(1)), 0, w).astype(np.int64)
    x1 = np.clip(np.floor(tri[..., 0].max(1)), -1, w - 1).astype(np.int64)
    y0 = np.clip(np.ceil(tri[..., 1].min(1)), 0, h).astype(np.int64)
    y1 = np.clip(np.floor(tri[..., 1].max(1)), -1, h - 1).astype(np.int64)
    bw, bh = np.maximum(x1 - x0 + 1, 0), np.maximum(y1 - y0 + 1, 0)
    count = bw * bh
    face_img = np.full(h * w, -1, dtype=np.int64)
    bary_img = np.zeros((h * w, 3), dtype=np.float32)
    ends = np.cumsum(count)
    start, nf = 0, len(count)
    while start < nf:
        base = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + max_candidates, side="right")))
        sel = np.arange(start, min(stop, nf))
        c = count[sel]
        fi = np.repeat(sel, c)
        local = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
        px = x0[fi] + local % np.maximum(bw[fi], 1)
        py = y0[fi] + local // np.maximum(bw[fi], 1)
        a, b, cc = tri[fi, 0], tri[fi, 1], tri[fi, 2]
        v0, v1 = b - a, cc - a
        v2 = np.stack([px, py], axis=1) - a
        den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
        ok = np.abs(den) > 1e-12
        den = np.where(ok, den, 1.0)
        l1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
        l2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
        l0 = 1.0 - l1 - l2
        eps = 1e-7
        inside = ok & (l0 >= -eps) & (l1 >= -eps) & (l2 >= -eps)
        pix = py[inside] * w + px[inside]
        face_img[pix] = fi[inside]
        bary_img[pix] = np.stack([l0, l1, l2], axis=1)[inside].clip(0, 1)
        start = stop
    return face_img.reshape(h, w), bary_img.reshape(h, w, 3)


def mean_view_directions(mesh: trimesh.Trimesh, cameras: Sequence[Camera | Frame]) -> tuple[np.ndarray, np.ndarray]:
    """Per face: the average training viewing direction (module docstring, step 3).

    Args:
        mesh: the mesh, in the cameras' frame.
        cameras: unbatched :class:`~san.cameras.Camera` objects (``c2w 4x4``, ``K 3x3``, ``width``,
            ``height``; pinhole) or :class:`san.data.scene.Frame` objects (projected through their
            ``distortion``, :func:`~san.mesh.extract.view_distortion`).

    Returns:
        ``(directions Fx3 unit, views F int)``: ``views`` is how many cameras contributed; faces
        with none get ``-normal``.
    """
    centres = np.asarray(mesh.triangles_center, dtype=np.float64)
    normals = np.asarray(mesh.face_normals, dtype=np.float64)
    acc = np.zeros_like(centres)
    views = np.zeros(len(centres), dtype=np.int64)
    pts = torch.tensor(centres)
    for cam in cameras:
        c2w = np.asarray(cam.c2w, dtype=np.float64)
        uv, z = project_points(
            pts,
            torch.from_numpy(c2w),
            torch.as_tensor(np.asarray(cam.K), dtype=torch.float64),
            view_distortion(cam),
        )
        uv, z = uv.numpy(), z.numpy()
        seen = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] >= 0) & (uv[:, 1] < cam.height)
        seen &= ((c2w[:3, 3] - centres) * normals).sum(1) > 0  # the face's front side faces the camera
        d = centres[seen] - c2w[:3, 3]
        acc[seen] += d / np.linalg.norm(d, axis=1, keepdims=True).clip(1e-12)
        views += seen
    norm = np.linalg.norm(acc, axis=1, keepdims=True)
    fallback = -np.asarray(mesh.face_normals, dtype=np.float64)
    dirs = np.where((views[:, None] > 0) & (norm > 1e-9), acc / norm.clip(1e-12), fallback)
    return dirs, views


def best_training_rays(
    mesh: trimesh.Trimesh,
    points: np.ndarray,
    normals: np.ndarray,
    cameras: Sequence[Camera | Frame],
    rel_tol: float = 0.05,
    depth_size: int = 96,
    fallback: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """For each surface point, the training camera that sees it most head-on.

    A camera sees a point when the point projects inside its image, in front of it, on the side the
    normal faces, and is not hidden by the mesh: its distance from the camera is at most the mesh's
    own depth at that pixel plus ``rel_tol`` of it. The depth map is ray-cast
    (:func:`san.rendering.mesh_raycast.raycast_mesh`, one ray per pixel centre) at ``depth_size``
    pixels on the longest side (cost: one ray cast per camera); the tolerance covers the depth change
    across such a pixel on surfaces seen at a grazing angle (measured on the demo scene: at 1 % the
    floor seen at 20 degrees failed the test on most of its texels). Among those cameras the one with the largest ``cos`` between the normal
    and the direction to the camera wins. With ``fallback``, a point no camera sees (hidden, or
    facing away from every camera: the underside of a thin surface, seen by a novel view through a
    hole) takes the camera whose image contains it with the largest ``|cos|``, returned with a
    negative ``cos``: rendering that camera's ray through it gives what the cameras saw there.

    Args:
        mesh: the mesh the points lie on (same frame as the cameras).
        points: ``Tx3`` points. normals: ``Tx3`` unit outward normals.
        cameras: unbatched :class:`~san.cameras.Camera` objects (pinhole) or
            :class:`san.data.scene.Frame` objects (ray-cast and projected through their ``distortion``,
            :func:`~san.mesh.extract.view_distortion`).

    Returns:
        ``(camera index T int64, -1 where no camera has it in its image; cos T float64)``.
    """
    from san.cameras import generate_rays
    from san.rendering.mesh_raycast import raycast_mesh

    best = np.full(len(points), -1, dtype=np.int64)
    best_cos = np.zeros(len(points))
    hidden = np.full(len(points), -1, dtype=np.int64)  # fallback: in the image, most head-on by |cos|
    hidden_cos = np.zeros(len(points))
    v = torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float64)
    f = torch.as_tensor(np.asarray(mesh.faces), dtype=torch.int64)
    pts = torch.as_tensor(points, dtype=torch.float64)
    for k, cam in enumerate(cameras):
        c2w = torch.as_tensor(np.asarray(cam.c2w), dtype=torch.float64)
        scale = min(1.0, depth_size / max(cam.width, cam.height))
        w, h = max(1, round(cam.width * scale)), max(1, round(cam.height * scale))
        K = torch.as_tensor(np.asarray(cam.K), dtype=torch.float64).clone()
        K[0] *= w / cam.width
        K[1] *= h / cam.height
        dist_cam = view_distortion(cam)
        depth = raycast_mesh(v, f, generate_rays(c2w, K, w, h, dist_cam)).depth.numpy().reshape(h, w)
        uv, z = project_points(pts, c2w, K, dist_cam)
        uv, z = uv.numpy(), z.numpy()
        inside = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
        to_cam = np.asarray(cam.c2w, dtype=np.float64)[:3, 3] - points
        dist = np.linalg.norm(to_cam, axis=1)
        cos = (to_cam * normals).sum(1) / np.maximum(dist, 1e-12)
        col = np.clip(uv[:, 0].astype(np.int64), 0, w - 1)
        row = np.clip(uv[:, 1].astype(np.int64), 0, h - 1)
        ref = depth[row, col]
        seen = inside & (cos > 0) & np.isfinite(ref) & (dist <= ref * (1 + rel_tol))
        better = seen & (cos > best_cos)
        best[better], best_cos[better] = k, cos[better]
        better = inside & (np.abs(cos) > hidden_cos)
        hidden[better], hidden_cos[better] = k, np.abs(cos[better])
    if fallback:
        use = (best < 0) & (hidden >= 0)
        best[use], best_cos[use] = hidden[use], -hidden_cos[use]
    return best, best_cos


def dilate(image: np.ndarray, covered: np.ndarray, pixels: int) -> np.ndarray:
    """Copy the nearest covered texel's colour into empty texels within ``pixels`` of coverage.

    Args:
        image: ``HxWxC``. covered: ``HxW`` bool. pixels: reach in texels (``0``: unchanged; ``< 0``:
            unlimited, every empty texel filled).
    """
    if pixels == 0 or covered.all() or not covered.any():
        return image
    from scipy.ndimage import distance_transform_edt

    dist, (ri, ci) = distance_transform_edt(~covered, return_indices=True)
    fill = ~covered if pixels < 0 else (~covered & (dist <= pixels))
    out = image.copy()
    out[fill] = image[ri[fill], ci[fill]]
    return out


def bake_texture(
    mesh: trimesh.Trimesh,
    color_fn: ColorFn,
    cameras: Sequence[Camera | Frame] | None = None,
    size: int = 1024,
    dilation: int = 8,
    view: Literal["train_ray", "mean_train_view", "normal"] = "train_ray",
    chunk: int = 65536,
    device: torch.device | str = "cpu",
    background: tuple[int, int, int] = (0, 0, 0),
    ray_fn: RayFn | None = None,
    ray_chunk: int = 4096,
) -> TexturedMesh:
    """Unwrap ``mesh`` and bake ``color_fn`` into an RGB texture (module docstring).

    Args:
        mesh: the mesh in the colour function's frame (``san``'s normalised frame for a NeRF).
        color_fn: ``(points Px3, unit directions Px3) -> rgb Px3`` in ``[0, 1]``, on ``device``.
        cameras: training cameras (same frame) for ``view="mean_train_view"``; ``None`` means
            ``-normal`` for every face.
        size: atlas resolution asked of xatlas (:func:`unwrap`: the atlas may grow).
        dilation: border padding in texels (:func:`dilate`).
        view: the view-direction rule (module docstring, step 3).
        chunk: texels per ``color_fn`` / ``ray_fn`` call.
        background: colour of texels no face or padding reaches.
        ray_fn: renders whole rays, for ``view="train_ray"`` (required there).
        ray_chunk: rays per ``ray_fn`` call.

    Returns:
        :class:`TexturedMesh`; ``stats`` has ``coverage`` (share of texels covered by faces),
        ``padded`` (share filled by dilation), ``faces_unseen`` and ``timings_s``.
    """
    if len(mesh.faces) == 0:
        raise ValueError("bake_texture: the mesh has no faces")
    if view not in ("train_ray", "mean_train_view", "normal"):
        raise ValueError(f"bake_texture: view must be 'train_ray', 'mean_train_view' or 'normal', got {view!r}")
    if view == "train_ray" and (ray_fn is None or not cameras):
        raise ValueError("bake_texture: view 'train_ray' needs the training cameras and a ray_fn that renders rays")
    timings = {}
    t = time.perf_counter()
    atlas = unwrap(mesh, size)
    timings["unwrap"] = time.perf_counter() - t
    t = time.perf_counter()
    face_img, bary = rasterize_uv(atlas)
    timings["rasterize"] = time.perf_counter() - t
    t = time.perf_counter()
    if view == "mean_train_view" and cameras:
        face_dirs, views = mean_view_directions(mesh, cameras)
    else:
        face_dirs, views = -np.asarray(mesh.face_normals, dtype=np.float64), np.zeros(len(mesh.faces), dtype=np.int64)
    covered = face_img >= 0
    fid = face_img[covered]
    corners = np.asarray(mesh.vertices, dtype=np.float64)[np.asarray(mesh.faces)[fid]]  # T x 3 x 3
    points = np.einsum("tk,tkd->td", bary[covered].astype(np.float64), corners)
    dirs = face_dirs[fid]
    rgb = np.zeros((len(points), 3), dtype=np.float32)
    short = np.ones(len(points), dtype=bool)  # texels coloured by color_fn's short ray
    hidden_texels = 0
    if view == "train_ray":
        normals = np.asarray(mesh.face_normals, dtype=np.float64)[fid]
        cam_idx, cam_cos = best_training_rays(mesh, points, normals, cameras, fallback=False)
        hidden_texels = int((cam_idx < 0).sum())
        timings["visibility"] = time.perf_counter() - t
        t = time.perf_counter()
        origins = np.stack([np.asarray(c.c2w, dtype=np.float64)[:3, 3] for c in cameras])
        seen = np.nonzero(cam_idx >= 0)[0]
        o = origins[cam_idx[seen]]
        d = points[seen] - o
        d /= np.linalg.norm(d, axis=1, keepdims=True).clip(1e-12)
        with torch.no_grad():
            for s in range(0, len(seen), ray_chunk):
                ot = torch.tensor(o[s : s + ray_chunk], dtype=torch.float32, device=device)
                dt = torch.tensor(d[s : s + ray_chunk], dtype=torch.float32, device=device)
                rgb[seen[s : s + ray_chunk]] = ray_fn(ot, dt).detach().float().cpu().numpy()
        short[seen] = False
        views = np.bincount(fid[cam_cos > 0], minlength=len(mesh.faces))
    todo = np.nonzero(short)[0]
    with torch.no_grad():
        for s in range(0, len(todo), chunk):
            idx = todo[s : s + chunk]
            p = torch.tensor(points[idx], dtype=torch.float32, device=device)
            d = torch.tensor(dirs[idx], dtype=torch.float32, device=device)
            rgb[idx] = color_fn(p, d).detach().float().cpu().numpy()
    timings["colors"] = time.perf_counter() - t
    image = np.empty((atlas.height, atlas.width, 3), dtype=np.uint8)
    image[:] = np.asarray(background, dtype=np.uint8)
    image[covered] = np.round(np.clip(np.nan_to_num(rgb, nan=0.0), 0, 1) * 255).astype(np.uint8)
    t = time.perf_counter()
    padded = dilate(image, covered, dilation)
    filled = (padded != image).any(-1) & ~covered
    timings["dilation"] = time.perf_counter() - t
    stats = {
        "size_asked": int(size),
        "width": int(atlas.width),
        "height": int(atlas.height),
        "view": view if cameras or view == "normal" else "normal",
        "dilation": int(dilation),
        "coverage": float(covered.mean()),
        "padded": float(filled.mean()),
        "texels_baked": int(covered.sum()),
        "faces_unseen": int((views == 0).sum()) if view != "normal" and cameras else None,
        "texels_short_ray": int(short.sum()),
        "texels_hidden_from_every_camera": hidden_texels if view == "train_ray" else None,
        "charts_vertices": int(len(atlas.uv)),
        "timings_s": timings,
    }
    log.info(
        "texture: %dx%d atlas, %.0f %% covered, baked in %.1f s",
        atlas.width,
        atlas.height,
        100 * stats["coverage"],
        sum(timings.values()),
    )
    return TexturedMesh(mesh, atlas, padded, stats)


def sample_texture(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup of ``HxWxC`` ``image`` at ``Nx2`` ``uv`` (module docstring's convention,
    clamped at the borders): ``NxC`` float64 in the image's units."""
    h, w = image.shape[:2]
    x = np.clip(uv[:, 0] * w - 0.5, 0, w - 1)
    y = np.clip((1.0 - uv[:, 1]) * h - 0.5, 0, h - 1)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    img = image.astype(np.float64)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def barycentric_coordinates(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """``Nx3`` barycentric coordinates of ``Nx3`` points in ``Nx3x3`` triangles (the points are
    projected onto each triangle's plane; degenerate triangles give ``(1, 0, 0)``)."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    den = d00 * d11 - d01 * d01
    ok = np.abs(den) > 1e-30
    den = np.where(ok, den, 1.0)
    l1 = np.where(ok, (d11 * d20 - d01 * d21) / den, 0.0)
    l2 = np.where(ok, (d00 * d21 - d01 * d20) / den, 0.0)
    return np.stack([1.0 - l1 - l2, l1, l2], axis=1)


class UVHits(NamedTuple):
    """Where rays hit a UV-mapped mesh (:func:`raycast_uv`); ``M`` = the number of hits.

    Attributes:
        hit: ``N`` bool, one per ray (ray order).
        face: ``M`` int64 face ids of the hits. bary: ``Mx3`` barycentric coordinates in them.
        uv: ``Mx2`` float64 texture coordinates (the module docstring's convention).
    """

    hit: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    uv: np.ndarray


def raycast_uv(vertices: torch.Tensor, faces: torch.Tensor, atlas: UVAtlas, rays) -> UVHits:
    """Cast ``rays`` (a :class:`san.cameras.RayBundle`) at the mesh ``vertices Vx3`` (float64) /
    ``faces Fx3`` (int64), on any device (:func:`san.rendering.mesh_raycast.raycast_mesh`), and
    interpolate the atlas's UVs at the hits; the outputs are CPU numpy arrays."""
    from san.rendering.mesh_raycast import raycast_mesh

    hits = raycast_mesh(vertices, faces, rays)
    hit = hits.hit.cpu().numpy()
    face = hits.face.cpu().numpy()[hit]
    triangles = vertices.cpu().numpy()[faces.cpu().numpy()[face]]
    bary = barycentric_coordinates(hits.points(rays).cpu().numpy()[hit], triangles)
    uv = np.einsum("nk,nkc->nc", bary, atlas.uv.astype(np.float64)[atlas.faces[face]])
    return UVHits(hit, face, bary, uv)


def texel_density(part: trimesh.Trimesh) -> float:
    """Texels per unit length of a textured mesh's mapping: ``sqrt(texel area / surface area)``."""
    uv = np.asarray(part.visual.uv, dtype=np.float64)[np.asarray(part.faces)]
    w, h = part.visual.material.image.size
    e1, e2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
    texels = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).sum() * w * h
    return float(np.sqrt(texels / max(float(part.area), 1e-30)))


def repack(part: trimesh.Trimesh, dilation: int = 8, oversample: float = 2.0) -> trimesh.Trimesh:
    """The textured ``part`` with its own compact atlas, texels resampled from its current texture.

    A segmented object's faces lie scattered over the scene's atlas; cropping leaves most of the
    image to other objects. Here the part is unwrapped again (:func:`unwrap`) at ``oversample``
    times the texel density of its current mapping (:func:`texel_density`; oversampling keeps the
    bilinear resampling from blurring it further), each new texel's point is mapped through the face's old UVs (barycentric) and the old
    texture is sampled there (:func:`sample_texture`), then borders are padded (:func:`dilate`). No
    colour is recomputed: the object's texture is the scene's, resampled once (bilinear).

    Args:
        part: ``trimesh.Trimesh`` with ``TextureVisuals`` (UVs and image).

    Returns:
        A new textured mesh (same faces in the same order, vertices split along the new seams).
    """
    from PIL import Image

    old_uv = np.asarray(part.visual.uv, dtype=np.float64)
    old_image = np.asarray(part.visual.material.image.convert("RGB"))
    faces = np.asarray(part.faces)
    geometry = trimesh.Trimesh(np.asarray(part.vertices), faces, process=False)
    atlas = unwrap(geometry, texels_per_unit=oversample * texel_density(part))
    face_img, bary = rasterize_uv(atlas)
    covered = face_img >= 0
    fid = face_img[covered]
    uv = np.einsum("tk,tkc->tc", bary[covered].astype(np.float64), old_uv[faces[fid]])
    image = np.zeros((atlas.height, atlas.width, 3), dtype=np.uint8)
    image[covered] = np.round(sample_texture(old_image, uv)).clip(0, 255).astype(np.uint8)
    image = dilate(image, covered, dilation)
    visual = trimesh.visual.TextureVisuals(uv=atlas.uv.astype(np.float64), image=Image.fromarray(image))
    return trimesh.Trimesh(np.asarray(part.vertices)[atlas.vmapping], atlas.faces, visual=visual, process=False)


def refine_texture(
    textured: TexturedMesh,
    cameras: Sequence[Camera | Frame],
    images: Sequence[np.ndarray],
    steps: int = 50,
    lr: float = 0.05,
    device: torch.device | str = "cpu",
    supersample: int = 1,
) -> TexturedMesh:
    """Fine-tune the texture against the training photos, geometry fixed (NeRF2Mesh's colour
    refinement without the vertex offsets).

    For every training view the mesh is ray-cast once (:func:`san.rendering.mesh_raycast.raycast_mesh`)
    with ``S x S`` rays per pixel (``S = supersample``; :func:`~san.cameras.subpixel_grid`; ``S = 1``:
    the pixel centre); each pixel whose rays all hit the mesh becomes a ``(S^2 UVs, photo colour)``
    sample through the hits' barycentric UVs, and its predicted colour is the mean of the ``S^2``
    bilinear lookups: a box-filtered pixel, the image formation of a supersampled photo (the demo's
    ground truth is rendered with ``S = 2``; a camera's pixel integrates its footprint too), so a
    pixel straddling a texture edge is fitted as the blend it is instead of pulling a texel toward
    it. The texture (in logit space, so it stays in ``[0, 1]``) is then fitted to all samples of all
    views at once by Adam on the mean squared error (``torch.nn.functional.grid_sample``, the
    convention of :func:`sample_texture`); texels no pixel looks up keep their baked colour. With the geometry
    fixed, only the lookup is differentiated, so no differentiable rasteriser is needed and it runs
    on CPU and GPU alike. Where the mesh is off the true surface, the fitted colour is the least-
    squares compromise of the views that see the spot, which is what novel views between them need.

    Args:
        textured: :class:`TexturedMesh` (the bake).
        cameras: training cameras, in the mesh's frame: unbatched :class:`~san.cameras.Camera`
            objects (pinhole) or :class:`san.data.scene.Frame` objects (rays cast through their
            ``distortion``, :func:`~san.mesh.extract.view_distortion`).
        images: their ``HxWx3`` float photos in ``[0, 1]`` (sizes matching the cameras).
        steps: Adam steps (full batch). lr: Adam learning rate (logit units).
        supersample: ``S``, sub-pixel rays per pixel side (``>= 1``).

    Returns:
        A new :class:`TexturedMesh` with the refined image; ``stats["refine"]`` holds the training
        PSNR on the mesh's pixels before and after, the sample count and the seconds taken.
    """
    from san.cameras import rays_from_pixels, subpixel_grid

    if len(cameras) != len(images):
        raise ValueError(f"refine_texture: {len(cameras)} cameras, {len(images)} images")
    s2 = int(supersample) ** 2
    t0 = time.perf_counter()
    mesh, atlas = textured.mesh, textured.atlas
    v = torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float64, device=device)
    f = torch.as_tensor(np.asarray(mesh.faces), dtype=torch.int64, device=device)
    uvs, colours = [], []
    for cam, img in zip(cameras, images):
        img = np.asarray(img, dtype=np.float32)[..., :3]
        if img.shape[:2] != (cam.height, cam.width):
            raise ValueError(f"refine_texture: image {img.shape[:2]} for a {cam.height}x{cam.width} camera")
        c2w = torch.as_tensor(np.asarray(cam.c2w), dtype=torch.float64, device=device)
        K = torch.as_tensor(np.asarray(cam.K), dtype=torch.float64, device=device)
        pixels = subpixel_grid(cam.width, cam.height, int(supersample), device=device, dtype=torch.float64)
        rays = rays_from_pixels(pixels, c2w, K, view_distortion(cam))
        hits = raycast_uv(v, f, atlas, rays)
        covered = hits.hit.reshape(-1, s2).all(axis=1)  # pixels whose sub-rays all hit
        keep = np.repeat(covered, s2)[hits.hit]  # their hits, in pixel order
        uvs.append(hits.uv[keep].reshape(-1, s2, 2))
        colours.append(img.reshape(-1, 3)[covered])
    uv = torch.as_tensor(np.concatenate(uvs), dtype=torch.float32, device=device).reshape(-1, 2)
    target = torch.as_tensor(np.concatenate(colours), dtype=torch.float32, device=device)
    lookup_s = time.perf_counter() - t0
    grid = torch.stack([uv[:, 0] * 2 - 1, (1 - uv[:, 1]) * 2 - 1], dim=-1)[None, None]
    start = torch.as_tensor(textured.image, dtype=torch.float32, device=device).permute(2, 0, 1)[None] / 255.0
    logits = torch.nn.Parameter(torch.logit(start.clamp(1e-3, 1 - 1e-3)))
    opt = torch.optim.Adam([logits], lr=lr)

    def loss_fn() -> torch.Tensor:
        pred = torch.nn.functional.grid_sample(
            torch.sigmoid(logits), grid, mode="bilinear", padding_mode="border", align_corners=False
        )
        return ((pred[0, :, 0].T.reshape(-1, s2, 3).mean(dim=1) - target) ** 2).mean()

    with torch.no_grad():
        before = float(loss_fn())
    with torch.enable_grad():
        for _ in range(int(steps)):
            loss = loss_fn()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        after = float(loss_fn())
        image = (torch.sigmoid(logits)[0].permute(1, 2, 0) * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    psnr = lambda m: -10.0 * float(np.log10(max(m, 1e-12)))  # noqa: E731
    stats = dict(textured.stats)
    stats["refine"] = {
        "steps": int(steps),
        "lr": float(lr),
        "samples": int(len(target)),
        "supersample": int(supersample),
        "train_psnr_mesh_pixels_before": psnr(before),
        "train_psnr_mesh_pixels_after": psnr(after),
        "seconds_lookup": lookup_s,
        "seconds": time.perf_counter() - t0,
    }
    log.info(
        "texture: refined against %d photos in %d steps: %.2f -> %.2f dB on the mesh's pixels",
        len(images),
        steps,
        psnr(before),
        psnr(after),
    )
    return TexturedMesh(mesh, atlas, image, stats)
