"""The `train` stage: a small GroupNorm CNN trained with DP-SGD (Opacus) and a non-private baseline."""
