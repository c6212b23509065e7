"""A refused or failed study's reason, stored in English by the Django-free worker, read in Vietnamese: told by its
code and figures (diagnosis.refusal_words), numbers with a decimal comma; an unknown sentence as stored."""

from __future__ import annotations

import pytest
from django.utils import translation

from diagnosis.refusal_words import reason_text
from tests.diagnosis.vi import vi_catalog
from worker.ml import refusals
from worker.ml.gate import COLOUR, NOT_A_RADIOGRAPH, explained
from worker.ml.polarity import INVERTED

pytestmark = pytest.mark.usefixtures("vi_catalog")
__all__ = ["vi_catalog"]

COLOUR_REASON = explained(COLOUR, "colour saturation 0.41, limit 0.20")


def test_the_worker_codes_its_refusals() -> None:
    assert refusals.code(COLOUR_REASON) == refusals.COLOUR_CODE
    assert refusals.code(explained(INVERTED, "P(inverted) 0.93")) == refusals.INVERTED_CODE
    assert refusals.code(explained(NOT_A_RADIOGRAPH, "x")) == refusals.NOT_A_RADIOGRAPH_CODE
    assert refusals.code("The file is empty.") is None
    assert refusals.detail(COLOUR_REASON) == "colour saturation 0.41, limit 0.20"


def test_a_refusal_in_vietnamese_with_its_figures() -> None:
    with translation.override("vi"):
        text = reason_text(COLOUR_REASON)
    assert text == (
        "Ảnh này trông như một ảnh chụp màu, không phải phim X-quang ngực. Hệ thống chỉ đánh giá phim X-quang ngực. "
        "Chi tiết kỹ thuật: độ bão hòa màu 0,41, giới hạn 0,20."
    )


def test_compound_details_and_upload_gate_sentences() -> None:
    reason = explained(
        NOT_A_RADIOGRAPH,
        "feature distance 45.0 from the training radiographs, limit 39.5; "
        "P(inverted) 0.93, but inverted it lies at 50.1",
    )
    with translation.override("vi"):
        assert reason_text(reason).endswith(
            "khoảng cách đặc trưng 45,0 so với phim huấn luyện, giới hạn 39,5; P(đảo màu) 0,93, nhưng khi đảo lại thì "
            "ở mức 50,1."
        )
        assert reason_text("The image is too small (12x40); at least 64x64 pixels are needed.") == (
            "Ảnh quá nhỏ (12x40); cần ít nhất 64x64 pixel."
        )
        assert reason_text(
            "This DICOM file is an MR image (modality MR); only chest radiographs (CR or DX) are judged."
        ) == ("Tệp DICOM này là ảnh MR (modality MR); hệ thống chỉ đánh giá phim X-quang ngực (CR hoặc DX).")
        assert reason_text("Inference failed: ValueError: boom") == "Suy luận thất bại: ValueError: boom"
        assert reason_text("Something nobody wrote a pattern for.") == "Something nobody wrote a pattern for."


@pytest.mark.parametrize("reason", [COLOUR_REASON, explained(INVERTED, "P(inverted) 0.93"), "The file is empty."])
def test_english_reads_as_stored(reason: str) -> None:
    with translation.override("en"):
        assert reason_text(reason) == reason
