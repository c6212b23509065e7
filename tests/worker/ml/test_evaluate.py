import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests import images


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "set"
    for label in ("NORMAL", "PNEUMONIA"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            if images.SHARED_DATA.exists():
                src = sorted((images.SHARED_DATA / "val" / label).glob("*.jpeg"))[i]
                shutil.copy(src, root / label / src.name)
            else:
                (root / label / f"{i}.png").write_bytes(images.png(300 + i, 300))
    return root


def test_evaluate_model_writes_json_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out" / "eval.json"
    call_command("evaluate_model", "--data", str(_folder(tmp_path)), "--json", str(out))
    result = json.loads(out.read_text())
    for key in (
        "n",
        "accuracy",
        "sensitivity",
        "specificity",
        "auc",
        "ece",
        "threshold",
        "model_version",
        "confusion_matrix",
    ):
        assert key in result
    # The shortcut probe (issue 10): shares in [0, 1], flips counted over both occlusions of every image.
    assert 0.0 <= result["occlusion_corners_dp05"] <= 1.0 and 0.0 <= result["occlusion_frame_dp05"] <= 1.0
    assert result["occlusions"] == 12 and result["occlusion_flips"] == pytest.approx(
        result["occlusion_flips_count"] / 12
    )
    assert result["cam_border_mass_median_all"] is None or 0.0 <= result["cam_border_mass_median_all"] <= 1.0
    # The corners are masked by the serving preprocessing itself, so occluding them cannot move a probability.
    assert result["occlusion_corners_dp05"] == 0.0
    assert result["n"] == 6
    (tn, fp), (fn, tp) = result["confusion_matrix"]
    assert tn + fp == 3 and fn + tp == 3
    assert result["accuracy"] == pytest.approx((tn + tp) / 6)
    assert (out.parent / "eval_roc.png").read_bytes()[:4] == b"\x89PNG"
    assert (out.parent / "eval_reliability.png").exists()
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "occlusion_corners_dp05" in printed and "cam_border_mass_median" in printed


def test_evaluate_model_explains_a_bad_folder(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="NORMAL is missing"):
        call_command("evaluate_model", "--data", str(tmp_path), "--json", str(tmp_path / "x.json"))
