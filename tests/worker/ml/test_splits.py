import numpy as np
import pytest

from worker.ml.splits import FOLDS, bucket, family, fold, patient_id


def test_patient_ids_from_kermany_file_names() -> None:
    assert patient_id("person1000_virus_1681.jpeg") == "PERSON1000"
    assert patient_id("person1000_bacteria_2931.jpeg") == "PERSON1000"
    assert patient_id("IM-0115-0001.jpeg") == "IM-0115"
    assert patient_id("NORMAL2-IM-1427-0001.jpeg") == "NORMAL2-IM-1427"


def test_families_from_file_names() -> None:
    assert family("IM-0115-0001.jpeg") == "IM"
    assert family("NORMAL2-IM-1427-0001.jpeg") == "NORMAL2"
    assert family("person1000_virus_1681.jpeg") == "virus"
    assert family("person1000_bacteria_2931.jpeg") == "bacteria"
    with pytest.raises(ValueError, match="no known family"):
        family("chest.png")


def test_buckets_are_stable_across_runs() -> None:
    # crc32, not Python's salted hash(): the GPU trainer and the CPU packager must agree.
    assert bucket("PERSON1000") == 53  # zlib.crc32(b"PERSON1000") % 100
    assert {bucket(f"PERSON{i}") for i in range(2000)} == set(range(100))


def _names() -> tuple[list[str], list[int]]:
    names = [f"IM-{i:04d}-0001.jpeg" for i in range(40)] + [f"NORMAL2-IM-{i:04d}-0001.jpeg" for i in range(40)]
    names += [f"person{i}_{'virus' if i % 3 else 'bacteria'}_{j}.jpeg" for i in range(300) for j in range(2)]
    return names, [0] * 80 + [1] * 600


@pytest.mark.parametrize("name", sorted(FOLDS))
def test_each_fold_holds_out_a_whole_family_of_normals_and_whole_patients(name: str) -> None:
    names, labels = _names()
    f = fold(name, names, labels)
    held_family = FOLDS[name][0]
    assert sorted(np.r_[f.train, f.validation].tolist()) == list(range(len(names)))
    val_normals = {family(names[i]) for i in f.validation if labels[i] == 0}
    train_normals = {family(names[i]) for i in f.train if labels[i] == 0}
    assert val_normals == {held_family} and held_family not in train_normals
    val_patients = {patient_id(names[i]) for i in f.validation if labels[i] == 1}
    train_patients = {patient_id(names[i]) for i in f.train if labels[i] == 1}
    assert val_patients and val_patients.isdisjoint(train_patients)
    assert 0.08 < len(val_patients) / 300 < 0.25


def test_the_two_folds_hold_out_different_pneumonia_patients() -> None:
    names, labels = _names()
    a, b = (set(fold(n, names, labels).validation.tolist()) for n in ("A", "B"))
    assert not a & b
