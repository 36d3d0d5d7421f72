"""``san view``: an interactive web viewer of a trained scene on `viser <https://viser.studio>`_.

The browser shows the extracted mesh (``mesh/mesh_normalized.ply``, the normalised frame of
``poses/cameras.json``) and the training cameras; a panel shows the session camera's rendering with
the current mask. Clicking the mesh adds a click to a :class:`SegmentationSession`: the click's ray
is cast onto the mesh, and the hit is projected into the session camera (where the session lifts it
again with the rendered depth). viser is optional (``pip install 'san[viewer]'``) and imported only
by :func:`run_viewer`; the helpers above it need numpy and torch only.

Conventions: viser cameras are OpenCV-like (``+x`` right, ``+y`` down, ``+z`` forward, as
:mod:`san.cameras`); ``wxyz`` is the scalar-first quaternion of the camera-to-world rotation,
``position`` the camera centre, ``fov`` the *vertical* field of view in radians and ``aspect``
width / height. Images are ``HxWx3``; pixels are ``(x, y)`` with pixel centres at ``+0.5``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from san.cameras import Camera, RayBundle, project_points, rays_from_pixels
from san.interaction.overlay import NEGATIVE_COLOUR, POSITIVE_COLOUR, overlay_image
from san.interaction.prompts import mesh_views
from san.interaction.session import SegmentationResult, SegmentationSession, SessionError
from san.layout import require_stages
from san.rendering.mesh_raycast import raycast_mesh
from san.trained_scene import scene_parts

log = logging.getLogger("san")

VIEWER_INSTALL = "pip install 'san[viewer]'"


# ------------------------------------------------------------------------- pure helpers (no viser)


def wxyz_to_matrix(wxyz) -> np.ndarray:
    """``3x3`` rotation of a scalar-first quaternion ``(w, x, y, z)`` (normalised first)."""
    return Rotation.from_quat(np.asarray(wxyz, dtype=np.float64), scalar_first=True).as_matrix()


def matrix_to_wxyz(R) -> np.ndarray:
    """Scalar-first unit quaternion ``4`` (``w >= 0``) of a ``3x3`` rotation."""
    q = Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_quat(scalar_first=True)
    return q if q[0] >= 0 else -q


def render_dims(aspect: float, size: int) -> tuple[int, int]:
    """``(width, height)`` of an image of aspect ``width / height`` whose longest side is ``size``."""
    if aspect >= 1:
        return int(size), max(1, int(round(size / aspect)))
    return max(1, int(round(size * aspect))), int(size)


def viser_to_camera(wxyz, position, fov: float, aspect: float, size: int) -> Camera:
    """The pinhole :class:`Camera` of a viser camera, rendered with longest side ``size`` pixels.

    ``c2w`` is ``[[R(wxyz), position], [0, 0, 0, 1]]`` (both frames OpenCV); ``K`` has square
    pixels, ``fy = (H / 2) / tan(fov / 2)`` and the principal point at the image centre.
    """
    width, height = render_dims(aspect, size)
    c2w = np.eye(4)
    c2w[:3, :3] = wxyz_to_matrix(wxyz)
    c2w[:3, 3] = np.asarray(position, dtype=np.float64).reshape(3)
    f = (height / 2) / np.tan(fov / 2)
    K = np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])
    return Camera(c2w, K, width, height)


def camera_to_viser(camera: Camera) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``(wxyz 4, position 3, vertical fov in radians, aspect)`` of a :class:`Camera`.

    The inverse of :func:`viser_to_camera` for centred principal points and square pixels (viser
    cameras have no others: an off-centre ``cx, cy`` is dropped, the fov comes from ``fy``).
    """
    fov = 2 * np.arctan((camera.height / 2) / camera.K[1, 1])
    return matrix_to_wxyz(camera.c2w[:3, :3]), camera.c2w[:3, 3].copy(), float(fov), camera.width / camera.height


def scene_up(c2ws) -> np.ndarray:
    """``3`` unit world direction that the cameras ``Nx4x4`` (OpenCV) see as up: their mean ``-y`` axis."""
    up = -np.asarray(c2ws, dtype=np.float64)[:, :3, 1].mean(axis=0)
    n = np.linalg.norm(up)
    return up / n if n > 1e-9 else np.array([0.0, 0.0, 1.0])


def frustum_scale(c2ws, extent: float, fraction: float = 0.3, cap: float = 0.03) -> float:
    """Depth of the drawn camera frustums: ``fraction`` of the median distance from each camera
    centre to its nearest neighbour (``Nx4x4`` ``c2ws``), at most ``cap * extent``, so that dense
    rings of cameras do not overlap and hide the mesh. A single camera gets ``cap * extent``."""
    centres = np.asarray(c2ws, dtype=np.float64)[:, :3, 3]
    limit = cap * float(extent)
    if len(centres) < 2:
        return limit
    d = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    spacing = float(np.median(d.min(axis=1)))
    return min(limit, fraction * spacing) if spacing > 0 else limit


@dataclass(frozen=True)
class RayClick:
    """Where a clicked ray lands in the session camera.

    Attributes:
        status: ``visible``, ``miss`` (the ray misses the mesh), ``behind``, ``off_screen`` or
            ``occluded`` (the mesh hides the hit from the session camera).
        point: ``3`` world hit on the mesh, or ``None`` on a miss.
        pixel: ``(x, y)`` pixels of the hit in the session camera, or ``None`` unless ``visible``.
    """

    status: str
    point: np.ndarray | None = None
    pixel: tuple[float, float] | None = None


def click_ray_to_pixel(origin, direction, vertices, faces, camera: Camera, rel_tol: float = 0.01) -> RayClick:
    """Cast the ray ``origin + t * direction`` (``3`` each, world) onto the mesh (``Vx3``, ``Fx3``)
    and project the nearest hit into ``camera`` (:func:`san.cameras.project_points`).

    The hit is ``occluded`` when the camera's own ray through that pixel meets the mesh more than
    ``rel_tol`` of the distance (plus 1e-6) before it.
    """
    v = torch.as_tensor(np.asarray(vertices), dtype=torch.float64)
    f = torch.as_tensor(np.asarray(faces), dtype=torch.int64)
    d = torch.as_tensor(np.asarray(direction, dtype=np.float64)).reshape(1, 3)
    ray = RayBundle(torch.as_tensor(np.asarray(origin, dtype=np.float64)).reshape(1, 3), d / d.norm())
    hits = raycast_mesh(v, f, ray)
    if not bool(hits.hit[0]):
        return RayClick("miss")
    point = hits.points(ray)[0]
    c2w, K = torch.as_tensor(camera.c2w), torch.as_tensor(camera.K)
    pixel, z = project_points(point[None], c2w, K)
    if float(z[0]) <= 1e-9:
        return RayClick("behind", point.numpy())
    x, y = (float(t) for t in pixel[0])
    if not (0 <= x < camera.width and 0 <= y < camera.height):
        return RayClick("off_screen", point.numpy())
    back = raycast_mesh(v, f, rays_from_pixels(pixel, c2w, K))
    distance = float((point - c2w[:3, 3]).norm())
    if not bool(back.hit[0]) or float(back.depth[0]) < distance * (1 - rel_tol) - 1e-6:
        return RayClick("occluded", point.numpy())
    return RayClick("visible", point.numpy(), (x, y))


def compose_overlay(rgb, result: SegmentationResult | None = None) -> np.ndarray:
    """``HxWx3`` uint8: ``rgb`` (``HxWx3`` float in [0, 1]) with ``result``'s mask tinted, its usable
    clicks drawn (positive green, negative red) and its box (as :func:`san.interaction.overlay.overlay_image`)."""
    rgb = rgb.detach().cpu().numpy() if isinstance(rgb, torch.Tensor) else np.asarray(rgb)
    if result is None:
        return overlay_image(rgb, np.zeros(rgb.shape[:2], dtype=bool))
    p = result.prompts
    return overlay_image(rgb, result.mask, p.points.numpy(), p.labels.numpy(), None if p.box is None else p.box.numpy())


# ------------------------------------------------------------------------------- the viser app


class MissingViewerError(ImportError):
    """viser, the optional viewer dependency, is not installed; the message says how to install it."""


def _import_viser():
    try:
        import viser
    except ImportError as e:
        raise MissingViewerError(f"the viewer needs the optional dependency viser: {VIEWER_INSTALL}") from e
    return viser


class ViewerApp:
    """Scene nodes and GUI of the viewer on a running ``viser.ViserServer`` (see :func:`run_viewer`).

    Args:
        server: the viser server. session: a session whose ``views`` are the scene's frames at the
            render size. scene: the :class:`san.data.scene.Scene`. mesh: ``trimesh.Trimesh``
            (normalised frame). out_dir: where exports go. render_size: longest side of renderings
            from a browser camera. initial_view: view shown first. mesh_view_count: views voted
            onto the mesh by the export. teacher_info: the decoder's ``TeacherInfo``; an untrained
            teacher is named as such in the status panel and in every export's metadata, and so is one
            trained on procedural scenes (``kind == "procedural"``). text_prompts: add a text box
            and a "Segment text" button (decoders with a text head, SAM 3; :meth:`segment_text`).
    """

    def __init__(
        self,
        server,
        session: SegmentationSession,
        scene,
        mesh,
        out_dir: Path,
        render_size: int = 256,
        initial_view: int = 0,
        mesh_view_count: int = 5,
        teacher_info=None,
        text_prompts: bool = False,
    ):
        self.server, self.session, self.scene, self.mesh = server, session, scene, mesh
        untrained = bool(teacher_info is not None and teacher_info.untrained)
        self.provenance = (
            {}
            if teacher_info is None
            else {
                "teacher": teacher_info.name,
                "untrained": untrained,
                "teacher_kind": teacher_info.kind,
                "teacher_label": teacher_info.label,
            }
        )
        kind = None if teacher_info is None else teacher_info.kind
        self.teacher_label = (
            f"**UNTRAINED teacher {teacher_info.name}: random weights, not SAM's masks.** "
            if untrained
            else f"**Teacher {teacher_info.name}: trained on procedural scenes (not SAM).** "
            if kind == "procedural"
            else ""
        )
        self.out_dir, self.render_size, self.mesh_view_count, self.exports = (
            Path(out_dir),
            render_size,
            mesh_view_count,
            0,
        )
        self.lock = threading.Lock()
        self.markers: list[Any] = []
        self.extent = extent = float(np.linalg.norm(mesh.extents))
        self.frustum_scale = frustum_scale([c.c2w for c in session.views], extent)
        server.scene.set_up_direction(scene_up([f.c2w for f in scene.frames]))
        server.scene.add_mesh_trimesh("/mesh", mesh)
        self.frustums = []
        for i, cam in enumerate(session.views):
            wxyz, pos, fov, aspect = camera_to_viser(cam)
            colour = (60, 60, 60) if scene.frames[i].split == "train" else (150, 60, 200)
            self.frustums.append(
                server.scene.add_camera_frustum(
                    f"/cameras/{i:03d}", fov, aspect, scale=self.frustum_scale, color=colour, wxyz=wxyz, position=pos
                )
            )
        self._connected: set[int] = set()
        server.on_client_connect(self._on_connect)
        gui = server.gui
        self.show_cameras = gui.add_checkbox("Show training cameras", True)
        self.show_cameras.on_update(lambda _: self.set_cameras_visible(self.show_cameras.value))
        labels = [f"{i:03d} {f.split} {Path(f.image).name}" for i, f in enumerate(scene.frames)]
        self.view_menu = gui.add_dropdown("View", labels, initial_value=labels[initial_view])
        self.view_menu.on_update(
            lambda e: self._guarded(lambda: self.snap_to_view(labels.index(self.view_menu.value), e.client))
        )
        gui.add_button("Render from my camera").on_click(
            lambda e: self._guarded(lambda: self.use_client_camera(e.client))
        )
        self.negative = gui.add_checkbox("Negative click", False)
        gui.add_button("Undo").on_click(lambda e: self._guarded(self._undo))
        gui.add_button("Clear").on_click(lambda e: self._guarded(self._clear))
        if text_prompts:  # a decoder with a text head (SAM 3): a text replaces the clicks, in every view
            self.text = gui.add_text("Text prompt", initial_value="")
            gui.add_button("Segment text").on_click(lambda e: self._guarded(self.segment_text))
        gui.add_button("Export segmented mesh").on_click(lambda e: self._guarded(self.export))
        self.status = gui.add_markdown("Click the mesh to add a click to the rendered view.")
        self.image = gui.add_image(np.full((64, 64, 3), 128, np.uint8), label="Session camera: rendering and mask")
        server.scene.on_click()(lambda e: self._guarded(lambda: self.click(e.ray_origin, e.ray_direction)))
        self._guarded(lambda: self.snap_to_view(initial_view))

    def set_status(self, message: str) -> None:
        """Show ``message`` in the status panel, always after the untrained-teacher label."""
        self.status.content = f"{self.teacher_label}{message}"

    def set_cameras_visible(self, visible: bool) -> None:
        """Show or hide the training-camera frustums (GUI checkbox "Show training cameras")."""
        for handle in self.frustums:
            handle.visible = bool(visible)

    def _on_connect(self, client) -> None:
        """A new browser tab starts looking through the session camera: its first camera report
        (the client's own default pose) is answered by moving it to the session view."""

        def first_update(camera) -> None:
            if client.client_id in self._connected or self.session.camera is None:
                return
            self._connected.add(client.client_id)
            wxyz, pos, fov, _ = camera_to_viser(self.session.camera)
            with client.atomic():
                camera.wxyz, camera.position, camera.fov = wxyz, pos, fov

        client.camera.on_update(first_update)

    def _guarded(self, action: Callable[[], Any]) -> None:
        """Run a GUI action under the session lock; a bad request is shown, not raised."""
        with self.lock:
            self.set_status("Working...")
            try:
                action()
            except (SessionError, ValueError) as e:
                self.set_status(f"**Error:** {e}")
            except Exception as e:  # a callback must not die silently in viser's thread pool
                log.exception("view: %s", e)
                self.set_status(f"**Error:** {type(e).__name__}: {e}")

    def snap_to_view(self, index: int, client=None) -> None:
        """Look through view ``index`` in the session and in ``client``'s browser (all if ``None``)."""
        camera = self.session.set_view(index)
        wxyz, pos, fov, _ = camera_to_viser(camera)
        for c in [client] if client is not None else self.server.get_clients().values():
            with c.atomic():
                c.camera.wxyz, c.camera.position, c.camera.fov = wxyz, pos, fov
        self.refresh(f"View {index}.")

    def use_client_camera(self, client) -> None:
        """Set the session camera to ``client``'s browser camera at the render size."""
        cam = viser_to_camera(
            client.camera.wxyz, client.camera.position, client.camera.fov, client.camera.aspect, self.render_size
        )
        self.session.set_camera(cam)
        self.refresh("Rendered from your camera.")

    def click(self, origin, direction) -> None:
        """A click in the 3D view: the ray's mesh hit, as a pixel of the session camera."""
        if self.session.camera is None:
            raise SessionError("no session camera yet: pick a training view or render from your camera")
        hit = click_ray_to_pixel(origin, direction, self.mesh.vertices, self.mesh.faces, self.session.camera)
        if hit.status == "miss":
            raise SessionError("click not added: the click missed the mesh")
        if hit.pixel is None:
            raise SessionError(
                f"click not added: the clicked point is {hit.status.replace('_', ' ')} in the session camera"
            )
        self.session.add_click(*hit.pixel, label=0 if self.negative.value else 1)
        self.refresh(f"Click at pixel ({hit.pixel[0]:.1f}, {hit.pixel[1]:.1f}).")

    def segment_text(self, text: str | None = None) -> None:
        """Prompt with the text box's text (or ``text``): it replaces the clicks (SAM 3's text head)."""
        text = self.session.set_text(self.text.value if text is None else text)
        self.refresh(f"Text prompt {text!r}.")

    def _undo(self) -> None:
        self.session.undo()
        self.refresh("Undone.")

    def _clear(self) -> None:
        self.session.clear()
        self.refresh("Cleared.")

    def refresh(self, message: str = "") -> None:
        """Render the session camera, predict its mask, update the image panel and 3D markers."""
        result = self.session.predict()
        overlay = compose_overlay(self.session.image, result)
        self.image.image = overlay
        wxyz, pos, fov, aspect = camera_to_viser(self.session.camera)
        self.server.scene.add_camera_frustum(
            "/session_camera",
            fov,
            aspect,
            scale=2 * self.frustum_scale,
            color=(255, 140, 0),
            image=overlay,
            wxyz=wxyz,
            position=pos,
        )
        for handle in self.markers:
            handle.remove()
        self.markers = [
            self.server.scene.add_icosphere(
                f"/clicks/{i}",
                radius=0.01 * self.extent,
                color=POSITIVE_COLOUR if c.label else NEGATIVE_COLOUR,
                position=c.point,
            )
            for i, c in enumerate(self.session.clicks)
        ]
        if self.session.text is not None:
            self.set_status(f"{message} text {self.session.text!r} (every view), score {result.score:.3f}.")
            return
        visible = sum(s == "visible" for s in result.prompts.click_status)
        self.set_status(
            f"{message} {visible}/{len(self.session.clicks)} click(s) usable here, score {result.score:.3f}."
        )

    def export(self) -> Path:
        """Vote the mask of a few training views onto the mesh and export it (input frame)."""
        from san.interaction.mesh_segmentation import export_segmentation

        start = (
            self.session.view_index if self.session.view_index is not None else (self.scene.indices("train") or [0])[0]
        )
        seg, used = self.session.segment_mesh(self.mesh, mesh_views(self.scene, start, self.mesh_view_count))
        if not used:
            raise SessionError("nothing to export: no click is usable in the views voted onto the mesh")
        self.exports += 1
        out = self.out_dir / f"object_{self.exports:02d}"
        clicks = [{"point": c.point.tolist(), "label": c.label} for c in self.session.clicks]
        from san.mesh.export import scene_up

        result = export_segmentation(
            self.mesh,
            seg.selected(),
            out,
            normalization=self.scene.normalization,
            frame="input",
            metadata={
                "mesh_views": used,
                "clicks_normalized": clicks,
                "vote_threshold": seg.vote_threshold,
                **self.provenance,
            },
            up=scene_up(self.scene.frames, self.scene.normalization),
        )
        empty = " (nothing selected: no segment mesh written)" if "segment" in result.empty else ""
        self.set_status(f"Exported {result.segment_faces} faces (views {used}) to `{out}`{empty}.")
        return out


def run_viewer(
    scene_dir: str | os.PathLike,
    variant: str = "full",
    mesh: str | os.PathLike | None = None,
    port: int = 8080,
    render_size: int = 256,
    out_dir: str | os.PathLike | None = None,
    device: str = "auto",
    host: str = "127.0.0.1",
    block: bool = True,
    teacher=None,
) -> ViewerApp:
    """Serve the viewer of a trained scene at ``http://{host}:{port}``.

    Args:
        scene_dir: ``results/{dataset}/{scene}``. variant: imitation variant.
        mesh: mesh file in the normalised frame (default ``mesh/mesh_normalized.ply``).
        render_size: longest side of the session renderings in pixels (training views are not upscaled).
        out_dir: exports (default ``{scene_dir}/segment_viewer``).
        block: serve until interrupted; ``False`` returns the running app.
        teacher: a :class:`san.teachers.Teacher` or :class:`san.teachers.TeacherConfig` decoding the
            masks; default (``None``) the teacher the field records.

    Raises:
        MissingStageError: a stage file is missing (checked before anything is loaded).
        MissingViewerError: viser is not installed.
        TeacherMismatchError: ``teacher`` is not the one the field imitates (checked before the NeRF loads).
    """
    import trimesh

    paths = require_stages(scene_dir, ("cameras", "nerf", "field") + (() if mesh else ("mesh",)), variant)
    viser = _import_viser()
    parts = scene_parts(scene_dir, variant=variant, teacher=teacher, device=device)
    views = [f.camera.resized(min(render_size, max(f.width, f.height))) for f in parts.scene.frames]
    session = SegmentationSession(parts.render_fn, parts.features_fn, parts.decode_fn, views)
    tri = trimesh.load(mesh or paths["mesh"], force="mesh", process=False)
    server = viser.ViserServer(host=host, port=port)
    start = (parts.scene.indices("train") or [0])[0]
    app = ViewerApp(
        server,
        session,
        parts.scene,
        tri,
        Path(out_dir) if out_dir else Path(scene_dir) / "segment_viewer",
        render_size,
        start,
        teacher_info=parts.teacher_info,
        text_prompts=parts.supports_text,
    )
    log.info("view: serving %s at http://%s:%d", scene_dir, host, port)
    if block:
        print(
            f"san view: open http://localhost:{port} (remote machine: ssh -L {port}:localhost:{port} HOST); Ctrl-C stops",
            flush=True,
        )
    try:
        while block:
            time.sleep(1.0)
    except KeyboardInterrupt:
        server.stop()
    return app
