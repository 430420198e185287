"""The `train` stage: placard crops (classical CV) and a HOG + linear head trained with DP-SGD (Opacus), plus a non-private baseline."""
