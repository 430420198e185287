"""Images (uint8 RGB) to the normalised float tensor the models take."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from tasks.errors import InvalidInputError

# Fixed constants, not statistics of the data: computing them from the training set would be one
# more (un-accounted) release of the private data.
MEAN = 0.5
STD = 0.25


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
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            shape = getattr(img, "shape", None)
            dtype = getattr(img, "dtype", type(img).__name__)
            raise InvalidInputError(f"to_tensor: images[{i}] must be (H, W, 3) uint8, got {shape} {dtype}")
        out[i] = cv2.resize(img, (input_size, input_size), interpolation=cv2.INTER_AREA)
    out = (out / 255.0 - MEAN) / STD
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
