"""Images (uint8 RGB) to the float tensor the models take: whole scenes or placard crops.

`prepare_inputs(images, features=..., input_size=...)` dispatches through `FEATURES`:
"full" is `to_tensor` (the whole scene, (N, 3, s, s)); "placard" is `placard_tensor` (the digit
cropped from the located placard, (N, 1, s, s)). Both are fixed per-image maps, so neither
spends privacy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from tasks.errors import InvalidInputError
from tasks.train.placard import placard_crop_found
from tasks.types import check_image

# Fixed constants, not statistics of the data: computing them from the training set would be one
# more (un-accounted) release of the private data.
MEAN = 0.5
STD = 0.25
# placard_tensor refuses a batch in which more than this share of images shows no placard: the front end
# is the builtin task's, and on other photos its centred-square guess would train on noise.
MAX_MISSING_PLACARDS = 0.2


def _check_image(img: object, i: int, name: str) -> None:
    check_image(img, name=f"{name}: images[{i}]")


def to_tensor(images: Sequence[NDArray[np.uint8]] | NDArray[np.uint8], *, input_size: int) -> torch.Tensor:
    """Resize and normalise RGB images into one batch.

    Args:
        images: N images, each (H, W, 3) uint8 RGB (sizes may differ), or one (N, H, W, 3) uint8 array.
        input_size: side `s` of the square model input; resized with cv2 INTER_AREA.
    Returns:
        (N, 3, s, s) float32, (pixel / 255 - 0.5) / 0.25.
    Raises:
        InvalidInputError: no images, an image that is not (H, W, 3) uint8, or input_size < 1.
    """
    if input_size < 1:
        raise InvalidInputError(f"to_tensor: input_size must be >= 1, got {input_size}")
    if len(images) == 0:
        raise InvalidInputError("to_tensor: images is empty")
    out = np.empty((len(images), input_size, input_size, 3), np.float32)
    for i, img in enumerate(images):
        _check_image(img, i, "to_tensor")
        out[i] = cv2.resize(img, (input_size, input_size), interpolation=cv2.INTER_AREA)
    out = (out / 255.0 - MEAN) / STD
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def placard_tensor(
    images: Sequence[NDArray[np.uint8]] | NDArray[np.uint8], *, input_size: int
) -> torch.Tensor:
    """Crop each image's digit placard (`placard_crop`) into one batch of ink maps.

    Args:
        images: N images, each (H, W, 3) uint8 RGB (sizes may differ), or one (N, H, W, 3) uint8 array.
        input_size: side `s` of the square crop.
    Returns:
        (N, 1, s, s) float32 in [0, 1]: 0 = card, 1 = the darkest ink of that placard.
    Raises:
        InvalidInputError: no images, an image that is not (H, W, 3) uint8 (or smaller than 16x16),
            input_size < 4, or more than `MAX_MISSING_PLACARDS` of the images show no placard (with the
            count: the front end of the builtin task does not fit these photos).
    """
    if input_size < 4:
        raise InvalidInputError(f"placard_tensor: input_size must be >= 4, got {input_size}")
    if len(images) == 0:
        raise InvalidInputError("placard_tensor: images is empty")
    out = np.empty((len(images), 1, input_size, input_size), np.float32)
    missing = 0
    for i, img in enumerate(images):
        _check_image(img, i, "placard_tensor")
        out[i, 0], found = placard_crop_found(img, size=input_size)
        missing += not found
    if missing > MAX_MISSING_PLACARDS * len(images):
        raise InvalidInputError(
            f"train.features placard: no digit placard found in {missing} of {len(images)} images "
            f"(more than {MAX_MISSING_PLACARDS:.0%}): the placard front end is the builtin task's; for your "
            "own photos set train.features: full and train.model: photo_hog (or gn_cnn, or your own model)"
        )
    return torch.from_numpy(out)


FEATURES: dict[str, Callable[..., torch.Tensor]] = {"full": to_tensor, "placard": placard_tensor}


def prepare_inputs(
    images: Sequence[NDArray[np.uint8]] | NDArray[np.uint8], *, features: str, input_size: int
) -> torch.Tensor:
    """Turn RGB images into model inputs with the `features` front end (a key of `FEATURES`).

    Args:
        images: N images, each (H, W, 3) uint8 RGB, or one (N, H, W, 3) uint8 array.
        features: "placard" -> (N, 1, s, s) digit crops; "full" -> (N, 3, s, s) whole scenes.
        input_size: side `s` of the model input.
    Raises:
        InvalidInputError: unknown `features`, or what the chosen front end raises.
    """
    if features not in FEATURES:
        raise InvalidInputError(f"prepare_inputs: features {features!r} is not one of {sorted(FEATURES)}")
    return FEATURES[features](images, input_size=input_size)
