"""Typed errors of the privtrail pipeline. Every one of them says which input and why."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of every error privtrail raises on purpose."""


class InvalidInputError(PipelineError, ValueError):
    """An input (image, params value, array, file) has the wrong shape, type, content or format."""


class AnonymizationError(PipelineError):
    """Detection or obfuscation of an image failed, or a sensitive detection survived it."""


class QualityGateError(PipelineError):
    """A stage's measured values broke one or more gates in `params.yaml: gates`."""


class PrivacyBudgetError(PipelineError):
    """A DP training run would exceed, or did exceed, the privacy budget it was given."""


class StageInterrupted(PipelineError):
    """SIGINT or SIGTERM stopped a stage at an image or shard boundary; its finished work is kept for a rerun."""

    def __init__(self, message: str, signum: int = 2) -> None:
        super().__init__(message, signum)
        self.signum = signum

    def __str__(self) -> str:
        return str(self.args[0])
