"""The keys a run stores its records by, derived in this one place from what
determines each record: the environment's recipe, exactly the agent code the
measurement runs (sandbox.digests.AgentCode), the artifact's files, the
loader, the tolerance and Keras safe mode. A run, a merge checking what
bundles claim, and a witness looking up an export all ask these same keys."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox import digests
from sandbox.envs import Environment
from sandbox.matrix import Matrix
from sandbox.records import Source


@dataclass(frozen=True)
class Keys:
    """The keys of one matrix's records (and one Keras safe mode)."""

    matrix: Matrix  # its tolerances are part of a load's key
    code: digests.AgentCode
    keras_unsafe: bool = False  # a repro spec may let Keras run code stored in the model

    @classmethod
    def of(cls, matrix: Matrix, keras_unsafe: bool = False) -> Keys:
        return cls(matrix, digests.AgentCode(matrix.probe_modules), keras_unsafe)

    @staticmethod
    def identity(environment: Environment) -> str:
        """An environment's key: what decides what it measures, not where it lives."""
        return digests.of_json(environment.identity())

    def export(self, identity: str, probe: str, fmt: str) -> str:
        return digests.of_json(["export", identity, self.code.export(probe, fmt), probe, fmt])

    def load(self, identity: str, source: Source, loader: str) -> str:
        artifact = source.artifact
        tol = self.matrix.tolerance(artifact.probe)
        return digests.of_json(["load", identity, artifact.files_digest, artifact.format, loader,
                                self.code.load(artifact.probe, artifact.format, loader), tol.atol, tol.rtol,
                                self.keras_unsafe])

    def registry(self, identity: str) -> str:
        return digests.of_json(["registry", identity, self.code.registry()])
