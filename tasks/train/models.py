"""Model registry, user model factories and the typed record of what was built (`ModelSpec`).

Every registered model is Opacus-compatible (GroupNorm, no BatchNorm, no in-place tricks).
`gn_cnn` and `photo_hog` take whole scenes (N, 3, s, s) (features "full"); `digit_hog` and
`digit_linear` take placard crops (N, 1, s, s) (features "placard"): `INPUT_CHANNELS` says which.
A user's own model is named by import path, "package.module:factory" (`is_user_model`); the factory
is called as `factory(num_classes=..., in_shape=(C, H, W))` and checked with Opacus' validators.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from tasks.errors import InvalidInputError


def _block(c_in: int, c_out: int, groups: int) -> nn.Sequential:
    # conv -> GroupNorm -> ReLU -> 2x2 average pool: halves the side.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
        nn.GroupNorm(groups, c_out),
        nn.ReLU(),
        nn.AvgPool2d(2),
    )


class GnCnn(nn.Module):
    """A strided stem, three conv blocks with GroupNorm, global max pooling and a linear head.

    Global max pooling makes the logits independent of where the placard sits in the image.
    GroupNorm instead of BatchNorm: per-sample gradients (DP-SGD) need no cross-sample statistics.
    The stride-2 stem keeps CPU cost low (a 256-image batch of 64 px inputs is ~2 GFLOP forward).

    Shapes: (N, 3, s, s) float32 -> (N, num_classes) logits; s should be divisible by 8.
    """

    def __init__(self, *, num_classes: int = 10, width: int = 8, groups: int = 4) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, kernel_size=5, stride=2, padding=2),  # s/2
            nn.GroupNorm(groups, w),
            nn.ReLU(),
            _block(w, 2 * w, groups),  # s/4
            _block(2 * w, 4 * w, groups),  # s/8
            nn.Conv2d(4 * w, 4 * w, kernel_size=3, padding=1),
            nn.GroupNorm(groups, 4 * w),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(torch.flatten(self.pool(self.features(x)), 1))
        return out


class DigitLinear(nn.Module):
    """Multinomial logistic regression on the crop average-pooled to `grid` x `grid` pixels.

    Shapes: (N, C, s, s) float32 -> (N, num_classes) logits; any s >= `grid`; C = `in_channels`.
    """

    def __init__(self, *, num_classes: int = 10, grid: int = 14, in_channels: int = 1) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.head = nn.Linear(in_channels * grid * grid, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(torch.flatten(self.pool(x), 1))
        return out


class Hog(nn.Module):
    """Fixed histogram-of-oriented-gradients features (Dalal & Triggs 2005); no trainable parameters.

    Central-difference gradients, magnitude soft-binned into `orientations` unsigned directions,
    summed over `cell`-pixel cells, L2-Hys normalised over 2x2-cell blocks. Data-independent, so it
    costs no privacy and DP-SGD only has to noise the head on top. The image is split into
    `cells` x `cells` cells whatever its size (7-px cells at s = 28).

    Shapes: (N, 1, s, s) -> (N, 4 * orientations, cells - 1, cells - 1).
    """

    def __init__(self, *, orientations: int = 9, cells: int = 4) -> None:
        super().__init__()
        self.orientations, self.cells = orientations, cells
        diff = torch.tensor([[-1.0, 0.0, 1.0]]) / 2
        self.kx: torch.Tensor
        self.ky: torch.Tensor
        self.register_buffer("kx", diff.view(1, 1, 1, 3), persistent=False)
        self.register_buffer("ky", diff.view(1, 1, 3, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = nn.functional.conv2d(x, self.kx, padding=(0, 1))
        gy = nn.functional.conv2d(x, self.ky, padding=(1, 0))
        mag, theta = torch.sqrt(gx**2 + gy**2 + 1e-12), torch.atan2(gy, gx) % torch.pi  # unsigned
        pos = theta / torch.pi * self.orientations  # in [0, orientations)
        bins = torch.arange(self.orientations, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        dist = torch.remainder(pos - bins - 0.5 + self.orientations / 2, self.orientations)
        weight = torch.clamp(1 - (dist - self.orientations / 2).abs(), min=0)  # linear vote, 2 bins
        cells = nn.functional.adaptive_avg_pool2d(mag * weight, self.cells)  # (N, o, c, c)
        blocks = torch.cat(
            [
                cells[:, :, i : i + cells.shape[2] - 1, j : j + cells.shape[3] - 1]
                for i in (0, 1)
                for j in (0, 1)
            ],
            dim=1,
        )  # (N, 4o, c-1, c-1): each position holds its 2x2 block
        blocks = blocks / torch.sqrt((blocks**2).sum(1, keepdim=True) + 1e-6)
        blocks = torch.clamp(blocks, max=0.2)  # L2-Hys: clip, renormalise
        return blocks / torch.sqrt((blocks**2).sum(1, keepdim=True) + 1e-6)


class DigitHog(nn.Module):
    """A linear classifier on fixed HOG features of the placard crop: the default DP model.

    Only the head (324 x 10 + 10 = 3,250 weights) is trained, so DP-SGD's noise is spread over few
    coordinates; the HOG layer is fixed. On the built-in data set it stays a few points below the
    non-private baseline at epsilon 3 (numbers: docs/measurements-archive.md#auditors-and-instruments, and
    each run's report).

    Shapes: (N, 1, s, s) float32 -> (N, num_classes) logits; s >= 8 (28 is the tuned size).
    """

    def __init__(self, *, num_classes: int = 10) -> None:
        super().__init__()
        self.features = Hog()
        self.head = nn.Linear(36 * 3 * 3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(torch.flatten(self.features(x), 1))
        return out


class PhotoHog(nn.Module):
    """A linear classifier on fixed features of a whole photo: the default DP model for user data.

    Features (no trainable parameters, data-independent, so they cost no privacy; Tramèr & Boneh 2021
    show such hand-crafted features + a linear DP head beat end-to-end DP CNNs at small ε): HOG of the
    grey image on an 8 x 8 grid of cells (36 x 7 x 7 = 1,764 values) and the colour layout, the RGB
    image average-pooled to 4 x 4 (48 values). Only the head is trained.

    Shapes: (N, 3, s, s) float32 (`to_tensor`'s normalisation) -> (N, num_classes) logits; s >= 16.
    """

    def __init__(self, *, num_classes: int = 10, cells: int = 8, colour_grid: int = 4) -> None:
        super().__init__()
        self.hog = Hog(cells=cells)
        self.colour_grid = colour_grid
        self.head = nn.Linear(36 * (cells - 1) ** 2 + 3 * colour_grid**2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grey = x.mean(dim=1, keepdim=True)
        colour = nn.functional.adaptive_avg_pool2d(x, self.colour_grid)
        feats = torch.cat([torch.flatten(self.hog(grey), 1), torch.flatten(colour, 1)], dim=1)
        out: torch.Tensor = self.head(feats)
        return out


MODELS: dict[str, Callable[..., nn.Module]] = {
    "digit_hog": DigitHog,
    "gn_cnn": GnCnn,
    "digit_linear": DigitLinear,
    "photo_hog": PhotoHog,
}
INPUT_CHANNELS: dict[str, int] = {"gn_cnn": 3, "digit_hog": 1, "digit_linear": 1, "photo_hog": 3}
FEATURES_OF: dict[str, str] = {
    "gn_cnn": "full",
    "photo_hog": "full",
    "digit_hog": "placard",
    "digit_linear": "placard",
}


def is_user_model(name: str) -> bool:
    """True for an import path "package.module:factory" (a user's model), False for a registry name."""
    return ":" in name


def _user_factory(name: str) -> Callable[..., nn.Module]:
    """Import "package.module:factory"; one line naming what is missing when it cannot."""
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise InvalidInputError(
            f"train.model {name!r}: cannot import module {module_name!r} ({err})"
        ) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InvalidInputError(f"train.model {name!r}: {module_name} has no callable {attr!r}")
    return factory  # type: ignore[no-any-return]


def _call_user_factory(
    name: str, *, num_classes: int, in_shape: tuple[int, int, int], seed: int
) -> nn.Module:
    """The user's factory, with torch's global RNG seeded inside a fork (the caller's RNG is untouched)."""
    factory = _user_factory(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = factory(num_classes=num_classes, in_shape=in_shape)
        except TypeError as err:
            raise InvalidInputError(
                f"train.model {name!r}: the factory must accept num_classes= and in_shape= ({err})"
            ) from None
    if not isinstance(model, nn.Module):
        raise InvalidInputError(
            f"train.model {name!r}: the factory returned {type(model).__name__}, not an nn.Module"
        )
    return model


def opacus_issues(model: nn.Module) -> list[str]:
    """Every layer DP-SGD cannot train as is, one line each naming the layer: Opacus' module validators
    (BatchNorm, LSTM, ...) and trainable layers without a per-sample gradient (hooks mode)."""
    from opacus.grad_sample import GradSampleModule
    from opacus.validators import ModuleValidator

    issues = []
    for layer, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        validator = ModuleValidator.VALIDATORS.get(type(module))
        found = [str(e) for e in validator(module)] if validator is not None and own else []
        if own and validator is None and type(module) not in GradSampleModule.GRAD_SAMPLERS:
            found.append("a trainable layer without an Opacus per-sample gradient (grad sampler)")
        issues += [f"layer {layer or '<root>'!r} ({type(module).__name__}): {msg}" for msg in found]
    return issues


def fix_for_dp(model: nn.Module, *, name: str) -> tuple[nn.Module, tuple[str, ...]]:
    """Make `model` trainable by DP-SGD: Opacus' `ModuleValidator.fix` (BatchNorm → GroupNorm, LSTM → DPLSTM).

    Returns:
        (the fixed model, one note per replaced layer, e.g. "layer 'bn1': BatchNorm2d replaced by GroupNorm").
    Raises:
        InvalidInputError: a layer that cannot be fixed, named in one line.
    """
    from opacus.validators import ModuleValidator

    before = {n: type(m).__name__ for n, m in model.named_modules()}
    if opacus_issues(model):
        model = ModuleValidator.fix(model)
    remaining = opacus_issues(model)
    if remaining:
        raise InvalidInputError(f"train.model {name!r}: not trainable with DP-SGD: {'; '.join(remaining)}")
    after = {n: type(m).__name__ for n, m in model.named_modules()}
    notes = tuple(
        f"layer {n!r}: {before[n]} replaced by {after[n]}"
        for n in before
        if n in after and after[n] != before[n]
    )
    return model, notes


def build_model(
    name: str,
    *,
    num_classes: int,
    seed: int,
    zero_head: bool = True,
    in_shape: tuple[int, int, int] | None = None,
) -> nn.Module:
    """Build a registered model, or a user's ("package.module:factory"), with seeded weights.

    Registered models get weights drawn from a seeded generator (not the global RNG). A user's
    factory runs with torch's RNG seeded inside a fork, and its model is fixed for DP-SGD (`fix_for_dp`).

    Args:
        name: key of `MODELS`, or "package.module:factory".
        num_classes: size of the output layer.
        seed: seed of the weight initialisation.
        zero_head: zero the final linear layer of registered models (uniform start logits).
        in_shape: (C, H, W) of one input; required for a user's model (its factory gets it).
    Raises:
        InvalidInputError: unknown model name, a factory that cannot be imported or called, or a user
            model with a layer DP-SGD cannot train.
    """
    if is_user_model(name):
        if in_shape is None:
            raise InvalidInputError(f"train.model {name!r}: a user model needs the input shape")
        model = _call_user_factory(name, num_classes=num_classes, in_shape=in_shape, seed=seed)
        return fix_for_dp(model, name=name)[0]
    if name not in MODELS:
        raise InvalidInputError(
            f"model {name!r} is not one of {sorted(MODELS)} (or a 'package.module:factory')"
        )
    model = MODELS[name](num_classes=num_classes)
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.kaiming_uniform_(module.weight, nonlinearity="relu", generator=gen)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    head = getattr(model, "head", None) if zero_head else None
    if isinstance(head, nn.Linear):
        nn.init.zeros_(
            head.weight
        )  # zero-initialised classifier: a common DP-SGD trick (uniform start logits)
    return model


# Value range of each front end's output (`tasks.train.preprocess`): model inversion, gradient inversion
# and canaries search and draw inside it.
INPUT_RANGES: dict[str, tuple[float, float]] = {"placard": (0.0, 1.0), "full": (-2.0, 2.0)}


@dataclass(frozen=True)
class ModelSpec:
    """What was built and trained, recorded once by train (models/meta.json) and read by every consumer.

    Attributes:
        model: a `MODELS` key or a user's "package.module:factory".
        features: the front end ("placard" | "full") that turns images into inputs.
        input_size: side of the model input.
        in_shape: (C, H, W) of one input, from the data.
        num_classes: output size, from the data's label set (not from one split's largest label).
        class_names: the label names, index = class.
        input_range: (low, high) of the inputs the front end produces.
        seed: seed of the weight initialisation.
        fixes: Opacus fixes applied to a user model (BatchNorm → GroupNorm, ...), one note each.
    """

    model: str
    features: str
    input_size: int
    in_shape: tuple[int, int, int]
    num_classes: int
    class_names: tuple[str, ...]
    input_range: tuple[float, float]
    seed: int
    fixes: tuple[str, ...] = ()

    def build(self, *, zero_head: bool = True) -> nn.Module:
        """A fresh model of this spec (the same weights for the same seed)."""
        return build_model(
            self.model,
            num_classes=self.num_classes,
            seed=self.seed,
            zero_head=zero_head,
            in_shape=self.in_shape,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        return d | {
            "in_shape": list(self.in_shape),
            "class_names": list(self.class_names),
            "input_range": list(self.input_range),
            "fixes": list(self.fixes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        """Inverse of `as_dict`.

        Raises:
            InvalidInputError: a key missing (e.g. a meta.json written before this record existed).
        """
        try:
            return cls(
                model=str(d["model"]),
                features=str(d["features"]),
                input_size=int(d["input_size"]),
                in_shape=tuple(int(v) for v in d["in_shape"]),  # type: ignore[arg-type]
                num_classes=int(d["num_classes"]),
                class_names=tuple(str(c) for c in d["class_names"]),
                input_range=(float(d["input_range"][0]), float(d["input_range"][1])),
                seed=int(d["seed"]),
                fixes=tuple(str(f) for f in d.get("fixes", ())),
            )
        except KeyError as err:
            raise InvalidInputError(
                f"model spec: missing {err} (retrain: models/meta.json predates it)"
            ) from None


def model_spec(
    name: str,
    *,
    features: str,
    input_size: int,
    in_shape: tuple[int, int, int],
    class_names: tuple[str, ...],
    seed: int,
) -> ModelSpec:
    """Check that the model fits the data and record it.

    Builds the model once on a zero batch: a registry model's channels must match the front end, a user
    model must produce (1, num_classes) logits. Raises InvalidInputError in one line naming the mismatch.
    """
    if len(class_names) < 2:
        raise InvalidInputError(
            f"train: need at least 2 classes to train a classifier, got {list(class_names)}"
        )
    if not is_user_model(name) and name in INPUT_CHANNELS and INPUT_CHANNELS[name] != in_shape[0]:
        raise InvalidInputError(
            f"train.model {name!r} takes {INPUT_CHANNELS[name]}-channel inputs; train.features "
            f"{features!r} gives {in_shape[0]} (use features {FEATURES_OF[name]!r})"
        )
    fixes: tuple[str, ...] = ()
    if is_user_model(name):
        fixes = fix_for_dp(
            _call_user_factory(name, num_classes=len(class_names), in_shape=in_shape, seed=seed), name=name
        )[1]
    spec = ModelSpec(
        model=name,
        features=features,
        input_size=input_size,
        in_shape=in_shape,
        num_classes=len(class_names),
        class_names=class_names,
        input_range=INPUT_RANGES[features],
        seed=seed,
        fixes=fixes,
    )
    with torch.no_grad():
        out = spec.build().eval()(torch.zeros(1, *in_shape))
    if tuple(out.shape) != (1, spec.num_classes):
        raise InvalidInputError(
            f"train.model {name!r}: output shape {tuple(out.shape)} for one input of shape "
            f"{in_shape}, expected (1, {spec.num_classes})"
        )
    return spec
