"""Patient-level splits: sizes, seeding, stratification, disjointness, save/load."""

import json

import numpy as np
import pytest

from braintools.data import splits

CASES = [f"case_{i:02d}" for i in range(20)]


def test_part_sizes_round_and_keep_one_patient_per_part():
    assert splits.part_sizes(20) == (16, 2, 2)
    assert splits.part_sizes(6) == (4, 1, 1)
    assert splits.part_sizes(3) == (1, 1, 1)
    assert splits.part_sizes(369) == (295, 37, 37)
    assert splits.part_sizes(10, (1.0, 0.0, 0.0)) == (10, 0, 0)
    assert splits.part_sizes(2) == (2, 0, 0)  # too few patients to validate


@pytest.mark.parametrize("n, fractions", [(0, (0.8, 0.1, 0.1)), (10, (0.5, 0.5, 0.5)), (10, (0.9, 0.2, -0.1)),
                                          (1, (0.0, 1.0, 0.0))])
def test_part_sizes_rejects_impossible_requests(n, fractions):
    with pytest.raises(ValueError):
        splits.part_sizes(n, fractions)


def test_split_covers_every_patient_once_with_80_10_10():
    split = splits._split_patients(CASES, seed=3)
    parts = [split.train, split.val, split.test]
    assert [len(part) for part in parts] == [16, 2, 2]
    assert sorted(split.train + split.val + split.test) == CASES
    for first in range(3):
        for second in range(first + 1, 3):
            assert not set(parts[first]) & set(parts[second])
    assert split.part_of(split.test[0]) == "test"
    with pytest.raises(KeyError):
        split.part_of("nobody")


def test_split_is_seeded():
    assert splits._split_patients(CASES, seed=1) == splits._split_patients(CASES, seed=1)
    tests = {splits._split_patients(CASES, seed=seed).test for seed in range(10)}
    assert len(tests) > 1


def test_split_is_stratified():
    strata = ["small"] * 10 + ["large"] * 10
    for seed in range(20):
        split = splits._split_patients(CASES, strata=strata, seed=seed)
        for part in (split.val, split.test):
            assert sorted(strata[CASES.index(case_id)] for case_id in part) == ["large", "small"]


def test_split_rejects_duplicates_and_bad_strata():
    with pytest.raises(ValueError, match="duplicate"):
        splits._split_patients(["a", "b", "a", "c"])
    with pytest.raises(ValueError, match="strata"):
        splits._split_patients(CASES, strata=[0, 1])


def test_check_disjoint_names_the_patient():
    with pytest.raises(ValueError, match="'b'.*'train'.*'test'"):
        splits.PatientSplit(("a", "b"), ("c",), ("b",)).check_disjoint()


def test_size_strata_are_quantile_bins():
    assert splits.size_strata([10, 500, 20, 900, 0, 300], n_bins=3) == [0, 2, 1, 2, 0, 1]
    assert splits.size_strata([5, 5, 5], n_bins=1) == [0, 0, 0]
    with pytest.raises(ValueError):
        splits.size_strata([1, 2], n_bins=0)


def test_save_and_load_split(tmp_path):
    split = splits._split_patients(CASES, seed=0)
    path = splits._save_split(split, tmp_path / "split.json")
    assert splits._load_split(path) == split
    assert json.loads(path.read_text())["test"] == list(split.test)


def test_load_split_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="split file not found"):
        splits._load_split(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"train": []}')
    with pytest.raises(ValueError, match="not a split file"):
        splits._load_split(tmp_path / "bad.json")
    (tmp_path / "overlap.json").write_text('{"train": ["a"], "val": ["a"], "test": []}')
    with pytest.raises(ValueError, match="'a'"):
        splits._load_split(tmp_path / "overlap.json")


def test_course_split_is_saved_reused_and_replaced_for_other_patients(tmp_path):
    (tmp_path / "name_mapping.csv").write_text(
        "Grade,BraTS_2020_subject_ID\n" + "".join(f"{'LGG' if i % 4 == 0 else 'HGG'},case_{i}\n" for i in range(20)))
    assert splits._read_grades(tmp_path)["case_4"] == "LGG"
    ids = [f"case_{i}" for i in range(20)]
    path = tmp_path / "split.json"
    first = splits.course_split(ids, path, nifti_train=tmp_path, seed=3)
    assert path.is_file() and (len(first.train), len(first.val), len(first.test)) == (16, 2, 2)
    path.write_text(json.dumps({"train": ids[:16], "val": ids[16:18], "test": ids[18:]}))
    assert splits.course_split(ids, path, nifti_train=tmp_path).test == ("case_18", "case_19")  # reused as saved
    fewer = splits.course_split(ids[:10], path)  # other patients: a new split replaces the file
    assert sorted(fewer.train + fewer.val + fewer.test) == sorted(ids[:10])
    assert splits._load_split(path) == fewer
    other_sizes = splits.course_split(ids[:10], path, fractions=(0.6, 0.2, 0.2))  # other part sizes: a new split
    assert (len(other_sizes.train), len(other_sizes.val), len(other_sizes.test)) == (6, 2, 2)
    assert splits._load_split(path) == other_sizes
    assert splits._read_grades(tmp_path / "nowhere") == {}


def test_stratified_order_spreads_every_stratum_over_the_whole_order():
    strata = ["small"] * 10 + ["large"] * 10
    order = splits._stratified_order(strata, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(20))
    for start in range(0, 20, 4):  # every run of 4 holds both strata, about 2 each
        run = [strata[i] for i in order[start:start + 4]]
        assert 1 <= run.count("small") <= 3
