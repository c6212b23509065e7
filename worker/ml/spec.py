"""ModelSpec: the model card that travels with a weights file. The worker refuses a file whose sha256 differs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.ml.operating_point import OperatingPoint

LABELS = ("NORMAL", "PNEUMONIA")
INPUT_SIZE = 224  # the model input is (INPUT_SIZE, INPUT_SIZE) grey levels
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "current"
# Who the training data came from: the Kermany pediatric set (one hospital, children aged 1-5).
INTENDED_POPULATION: dict[str, Any] = {
    "min_age_years": 1,
    "max_age_years": 5,
    "description": "frontal chest radiographs of children aged 1 to 5 years "
    "(Guangzhou Women and Children's Medical Center, Kermany et al. 2018)",
}


class IntegrityError(RuntimeError):
    """A weights or gate file does not match the sha256 recorded in its model card."""


@dataclass(frozen=True)
class GateSpec:
    file: str
    sha256: str
    max_distance: float
    max_chroma: float


@dataclass(frozen=True)
class ArtifactSpec:
    """A side file of the model (e.g. the polarity detector), checked against its sha256 like the weights."""

    file: str
    sha256: str


@dataclass(frozen=True)
class LiteRtSpec:
    """The model converted for LiteRT (worker.ml.litert_export): its file and sha256, and the sha256 of the Keras
    file it was converted from, which must be the card's (a conversion of another model is refused)."""

    file: str
    sha256: str
    converted_from_sha256: str


@dataclass(frozen=True)
class ModelSpec:
    """conv_layers: the layers Grad-CAM reads (one per ensemble member); cam_scale: the raw Grad-CAM value
    drawn at full strength, the same for every study, so that map colours compare across studies."""

    version: str
    directory: Path
    weights_file: str
    sha256: str
    arch: str
    conv_layers: tuple[str, ...]
    feature_layers: tuple[str, ...]
    input_size: int
    temperature: float
    threshold: float
    cam_scale: float
    labels: tuple[str, ...] = LABELS
    gate: GateSpec | None = None
    polarity: ArtifactSpec | None = None
    litert: LiteRtSpec | None = None
    card: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def population(self) -> dict[str, Any]:
        """The intended population from the card (older cards lack it: the training data's)."""
        return {**INTENDED_POPULATION, **self.card.get("intended_population", {})}

    def operating_point(self) -> OperatingPoint:
        """The card's own operating point: its temperature and threshold."""
        return OperatingPoint(slope=1.0 / self.temperature, intercept=0.0, threshold=self.threshold)

    @classmethod
    def load(cls, directory: Path | str = DEFAULT_MODEL_DIR) -> ModelSpec:
        directory = Path(directory)
        card = json.loads((directory / "card.json").read_text())
        gate, polarity, litert = card.get("gate"), card.get("polarity"), card.get("litert")
        return cls(
            version=card["version"],
            directory=directory,
            weights_file=card["weights_file"],
            sha256=card["sha256"],
            arch=card["arch"],
            conv_layers=tuple(card["conv_layers"]),
            feature_layers=tuple(card["feature_layers"]),
            input_size=int(card["input_size"]),
            temperature=float(card["temperature"]),
            threshold=float(card["threshold"]),
            cam_scale=float(card["cam_scale"]),
            labels=tuple(card.get("labels", LABELS)),
            gate=GateSpec(**{k: gate[k] for k in ("file", "sha256", "max_distance", "max_chroma")}) if gate else None,
            polarity=ArtifactSpec(polarity["file"], polarity["sha256"]) if polarity else None,
            litert=LiteRtSpec(litert["file"], litert["sha256"], litert["converted_from_sha256"]) if litert else None,
            card=card,
        )

    def verified_path(self, name: str, expected: str) -> Path:
        path = self.directory / name
        actual = sha256_file(path)
        if actual != expected:
            raise IntegrityError(f"{path} has sha256 {actual}, the model card says {expected}; refusing to load it.")
        return path

    def litert_path(self) -> Path:
        """The LiteRT model's file, checked like the weights: its own sha256, and converted from this card's
        weights file."""
        if self.litert is None:
            raise IntegrityError(f"the model card in {self.directory} names no LiteRT model (worker.ml.litert_export)")
        if self.litert.converted_from_sha256 != self.sha256:
            raise IntegrityError(
                f"{self.litert.file} was converted from a weights file with sha256 {self.litert.converted_from_sha256}"
                f", not this card's {self.sha256}; refusing to load it."
            )
        return self.verified_path(self.litert.file, self.litert.sha256)


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
