import numpy as np

from worker.ml.data import SHIFTS, shifted
from worker.ml.splits import patient_id


def test_patient_ids_from_kermany_file_names() -> None:
    assert patient_id("person1000_virus_1681.jpeg") == "PERSON1000"
    assert patient_id("person1000_bacteria_2931.jpeg") == "PERSON1000"
    assert patient_id("IM-0115-0001.jpeg") == "IM-0115"
    assert patient_id("NORMAL2-IM-1427-0001.jpeg") == "NORMAL2-IM-1427"


def test_every_shift_changes_the_image_and_keeps_its_shape() -> None:
    gray = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))
    for kind in range(len(SHIFTS)):
        out = shifted(gray, kind)
        assert out.shape == gray.shape and out.dtype == np.uint8
        assert not np.array_equal(out, gray), kind
