from pathlib import Path

import numpy as np

from worker.ml.data import Item, patient_id, patient_split, shifted


def test_patient_ids_from_kermany_file_names() -> None:
    assert patient_id("person1000_virus_1681.jpeg") == "PERSON1000"
    assert patient_id("person1000_bacteria_2931.jpeg") == "PERSON1000"
    assert patient_id("IM-0115-0001.jpeg") == "IM-0115"
    assert patient_id("NORMAL2-IM-1427-0001.jpeg") == "NORMAL2-IM-1427"


def test_split_never_puts_one_patient_on_both_sides() -> None:
    items = [Item(Path(f"person{i // 3}_x_{i}.jpeg"), i % 2, f"P{i // 3}") for i in range(300)]
    train, val = patient_split(items, 0.2, seed=1)
    assert {i.patient for i in train}.isdisjoint({i.patient for i in val})
    assert len(train) + len(val) == 300
    assert 0.1 < len(val) / 300 < 0.3
    again_train, _ = patient_split(items, 0.2, seed=1)
    assert [i.path for i in again_train] == [i.path for i in train]  # seeded: reproducible


def test_every_shift_changes_the_image_and_keeps_its_shape() -> None:
    gray = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))
    for kind in range(6):
        out = shifted(gray, kind)
        assert out.shape == gray.shape and out.dtype == np.uint8
        assert not np.array_equal(out, gray), kind
