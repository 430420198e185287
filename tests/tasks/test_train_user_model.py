"""Training on any labelled images: the class count from the data, a user's own model by import path
(checked and fixed with Opacus' ModuleValidator), the photo default, and a placard front end that fails loudly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tasks.errors import InvalidInputError
from tasks.train.dp import evaluate, train_dp, train_nonprivate
from tasks.train.models import ModelSpec, build_model, model_spec
from tasks.train.preprocess import prepare_inputs

USER = "tests.user_models:build"


def _data(n: int, classes: int, shape: tuple[int, int, int] = (3, 32, 32), seed: int = 0):
    """Separable toy data: class c has a bright square in quadrant c % 4 of channel c % shape[0]."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (n, *shape)).astype(np.float32)
    y = np.arange(n) % classes
    s = shape[1] // 2
    for i, c in enumerate(y):
        r, q = divmod(int(c) % 4, 2)
        x[i, int(c) % shape[0], r * s : (r + 1) * s, q * s : (q + 1) * s] += 1.5
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


def _spec(name: str, classes: int = 3, features: str = "full") -> ModelSpec:
    return model_spec(name, features=features, input_size=32, in_shape=(3, 32, 32),
                      class_names=tuple(f"c{i}" for i in range(classes)), seed=0)


def test_user_model_batchnorm_is_fixed_and_noted() -> None:
    spec = _spec(USER)
    assert spec.fixes == ("layer '1': BatchNorm2d replaced by GroupNorm",)
    model = spec.build()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    assert ModelSpec.from_dict(spec.as_dict()) == spec


def test_user_model_trains_with_dp_sgd_to_the_target() -> None:
    x, y = _data(240, 3)
    res = train_dp(x, y, model_name=USER, epochs=4, batch_size=60, lr=0.5, momentum=0.9, target_epsilon=3.0,
                   target_delta=1e-5, max_grad_norm=1.0, accountant="prv", seed=0, num_classes=3)
    assert res.record is not None and res.record.epsilon <= 3.0 + 0.01
    assert res.model(x[:1]).shape == (1, 3)
    spec = _spec(USER)
    reloaded = spec.build()
    reloaded.load_state_dict(res.model.state_dict())  # what audit and check_quality do: same shapes
    assert evaluate(reloaded, x, y) == pytest.approx(evaluate(res.model, x, y))


def test_unsupported_layer_fails_in_one_line_naming_it() -> None:
    with pytest.raises(InvalidInputError) as err:
        _spec("tests.user_models:build_unsupported")
    msg = str(err.value)
    assert "\n" not in msg and "layer '1' (Scale)" in msg and "per-sample gradient" in msg


@pytest.mark.parametrize(("name", "needle"), [
    ("tests.no_such_module:build", "cannot import module"),
    ("tests.user_models:missing", "has no callable 'missing'"),
    ("tests.user_models:build_no_kwargs", "must accept num_classes= and in_shape="),
])
def test_bad_user_model_paths_name_the_problem(name: str, needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        _spec(name)


def test_fewer_than_ten_classes_gives_a_head_of_that_size() -> None:
    """The old `max(10, ...)` head made a 3-class model unloadable by check_quality and audit."""
    x, y = _data(90, 3, shape=(3, 32, 32))
    base = train_nonprivate(x, y, model_name="photo_hog", epochs=3, batch_size=30, lr=1.0, momentum=0.9, seed=0,
                            num_classes=3)
    assert base.model.head.out_features == 3
    spec = _spec("photo_hog")
    spec.build().load_state_dict(base.model.state_dict())
    assert evaluate(base.model, x, y) > 0.9
    with pytest.raises(InvalidInputError, match="labels go up to 2 but the model has 2 classes"):
        train_nonprivate(x, y, model_name="photo_hog", epochs=1, batch_size=30, lr=1.0, momentum=0.9, seed=0,
                         num_classes=2)


def test_channels_must_fit_the_registry_model() -> None:
    with pytest.raises(InvalidInputError, match="use features 'placard'"):
        _spec("digit_hog")
    with pytest.raises(InvalidInputError, match="at least 2 classes"):
        _spec("photo_hog", classes=1)


def test_user_model_init_is_seeded_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = build_model(USER, num_classes=3, seed=7, in_shape=(3, 32, 32)).state_dict()
    assert torch.equal(torch.random.get_rng_state(), before)
    b = build_model(USER, num_classes=3, seed=7, in_shape=(3, 32, 32)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_placard_front_end_fails_loudly_on_photos_without_placards() -> None:
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(6)]
    with pytest.raises(InvalidInputError, match=r"no digit placard found in 6 of 6 images.*train.features: full"):
        prepare_inputs(photos, features="placard", input_size=28)
    assert prepare_inputs(photos, features="full", input_size=32).shape == (6, 3, 32, 32)
