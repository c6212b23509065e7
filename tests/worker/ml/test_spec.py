import json
import shutil
from pathlib import Path

import pytest

from worker.ml.spec import DEFAULT_MODEL_DIR, IntegrityError, ModelSpec, sha256_file


def test_shipped_card_matches_its_files() -> None:
    spec = ModelSpec.load(DEFAULT_MODEL_DIR)
    assert spec.verified_path(spec.weights_file, spec.sha256).exists()
    assert spec.gate is not None
    assert spec.verified_path(spec.gate.file, spec.gate.sha256).exists()
    assert spec.labels == ("NORMAL", "PNEUMONIA")
    assert 0 < spec.threshold < 1 and spec.temperature > 0


def test_a_tampered_weights_file_is_refused(tmp_path: Path) -> None:
    shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "m", ignore=shutil.ignore_patterns("candidates"))
    spec = ModelSpec.load(tmp_path / "m")
    with open(spec.directory / spec.weights_file, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(IntegrityError, match="refusing to load"):
        spec.verified_path(spec.weights_file, spec.sha256)


def test_the_predictor_refuses_a_card_with_another_hash(tmp_path: Path) -> None:
    from worker.ml.inference import Predictor

    shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "m", ignore=shutil.ignore_patterns("candidates"))
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    card["sha256"] = "0" * 64
    (tmp_path / "m" / "card.json").write_text(json.dumps(card))
    with pytest.raises(IntegrityError):
        Predictor(ModelSpec.load(tmp_path / "m"))


def test_sha256_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
