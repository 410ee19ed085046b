"""The HDF5 channel order found is the order used: inference, the cache manifest, verify and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import toy_case

from braintools.cache import build, store, verify
from braintools.cache.sources import h5_sources
from braintools.cli import main
from braintools.data import io, signatures
from braintools.data.preprocess import zscore_brain
from braintools.errors import DataError
from braintools.synthetic.generator import make_case
from braintools.synthetic.layout import write_h5_volume

FLAIR_FIRST = ("flair", "t1", "t1ce", "t2")  # the minority order of the Kaggle files, not the package default


def write_toy_h5(folder, order=FLAIR_FIRST, volumes=(4, 9, 17)):
    """Toy brain volumes with BraTS contrasts (one seed per volume) as HDF5 slices in channel ``order``."""
    cases = {}
    for volume in volumes:
        image, seg = toy_case(seed=volume)
        write_h5_volume(dict(zip(io.MODALITIES, image)), seg, folder, volume, channel_order=order)
        cases[volume] = (image, seg)
    return cases


def test_contradicting_order_speaks_only_when_the_signatures_are_clear():
    image, seg = toy_case()
    assert signatures.contradicting_order(image, seg, io.MODALITIES) is None
    stored = image[[3, 0, 1, 2]]  # flair, t1, t1ce, t2
    assert signatures.contradicting_order(stored, seg, FLAIR_FIRST) is None
    preferred = signatures.contradicting_order(stored, seg, io.MODALITIES)
    assert preferred.order == FLAIR_FIRST and preferred.measured == 9
    no_et = np.where(seg == 4, 1, seg).astype(np.uint8)  # without ET, T1 and T1ce cannot be told apart
    assert signatures.contradicting_order(stored, no_et, ("flair", "t1ce", "t1", "t2")) is None
    rng = np.random.default_rng(0)
    for _ in range(20):  # no brain contrasts: no verdict, whatever the noise
        noise = rng.uniform(50, 1000, image.shape).astype(np.float32)
        assert signatures.contradicting_order(noise, seg, io.MODALITIES) is None


def test_infer_h5_channel_order_votes_over_volumes(tmp_path):
    write_toy_h5(tmp_path)
    vote = signatures.infer_h5_channel_order(io.find_h5_volumes(tmp_path), n_volumes=2)
    assert vote.order == FLAIR_FIRST and list(vote.guesses) == [4, 9]
    assert vote.conclusive and vote.agreeing == 2
    assert "HDF5 channel order: ('flair', 't1', 't1ce', 't2') (2 of 2 volumes agree)" in vote.describe()
    with pytest.raises(ValueError, match="at least one volume"):
        signatures.infer_h5_channel_order({}, n_volumes=2)


def write_toy_h5_without_et(folder, volumes, order=FLAIR_FIRST):
    for volume in volumes:
        image, seg = toy_case(seed=volume)
        seg = np.where(seg == 4, 1, seg).astype(np.uint8)  # low-grade: T1 and T1ce look alike
        write_h5_volume(dict(zip(io.MODALITIES, image)), seg, folder, volume, channel_order=order)


def test_the_vote_reads_more_volumes_while_t1_and_t1ce_cannot_be_told_apart(tmp_path):
    write_toy_h5_without_et(tmp_path, (1, 2))
    write_toy_h5(tmp_path, volumes=(3,))
    volumes = io.find_h5_volumes(tmp_path)
    vote = signatures.infer_h5_channel_order(volumes, n_volumes=2)
    assert vote.order == FLAIR_FIRST and list(vote.guesses) == [1, 2, 3] and vote.agreeing == 3
    assert vote.guesses[1].order is None and vote.guesses[3].order == FLAIR_FIRST
    assert "(3 of 3 volumes agree); volumes 1, 2 could not tell alone" in vote.describe()
    stuck = signatures.infer_h5_channel_order(volumes, n_volumes=2, extra_volumes=0)
    assert stuck.order is None and not stuck.conclusive and stuck.agreeing == 0 and list(stuck.guesses) == [1, 2]
    assert "T1 and T1ce cannot be told apart" in stuck.reason
    assert "HDF5 channel order: cannot tell (2 orders fit volumes 1, 2" in stuck.describe()


def test_volumes_that_contradict_each_other_leave_the_order_open(tmp_path):
    write_toy_h5(tmp_path, volumes=(1,))
    write_toy_h5(tmp_path, order=io.MODALITIES, volumes=(2,))  # another order in the same folder: no single order
    vote = signatures.infer_h5_channel_order(io.find_h5_volumes(tmp_path), n_volumes=2)
    assert vote.order is None and "the volumes contradict each other" in vote.reason
    assert list(vote.guesses) == [1, 2]  # a contradiction is not resolved by reading more


def test_the_manifest_records_the_channel_order_of_hdf5_sources(tmp_path):
    cases = write_toy_h5(tmp_path / "h5", volumes=(4,))
    cache_dir = tmp_path / "cache"
    build.precache(h5_sources(tmp_path / "h5", channel_order=FLAIR_FIRST), cache_dir, workers=1, progress=False)
    entry = store.read_manifest(cache_dir)["cases"]["volume_4"]
    assert entry["channel_order"] == list(FLAIR_FIRST) and entry["modalities"] == list(io.MODALITIES)
    image, _ = store.load_cached_case(cache_dir, "volume_4", mmap=False)
    np.testing.assert_allclose(image.astype(np.float32), zscore_brain(cases[4][0]), rtol=2**-10, atol=1e-3)
    assert verify.verify_cache(h5_sources(tmp_path / "h5", channel_order=FLAIR_FIRST), cache_dir, workers=1,
                              progress=False) == {}


def test_verify_fails_when_the_cached_order_contradicts_the_signatures(tmp_path):
    write_toy_h5(tmp_path / "h5", volumes=(4,))
    wrong = h5_sources(tmp_path / "h5")  # the package default t1, t1ce, t2, flair: wrong for these files
    build.precache(wrong, tmp_path / "cache", workers=1, progress=False)
    problems = verify.verify_cache(wrong, tmp_path / "cache", workers=1, progress=False, raise_on_failure=False)
    assert list(problems) == ["volume_4"]
    assert "volume_4_slice_0.h5" in problems["volume_4"]
    assert "intensity signatures say ('flair', 't1', 't1ce', 't2') (9/9 hold)" in problems["volume_4"]
    assert "fails 'CSF stands out on T2, not on FLAIR' at " in problems["volume_4"]  # and by how much


def test_verify_says_nothing_when_the_signatures_cannot_tell(tmp_path):
    write_toy_h5_without_et(tmp_path / "h5", (5,), order=("flair", "t1ce", "t1", "t2"))  # T1, T1ce swapped: unseen
    sources = h5_sources(tmp_path / "h5", channel_order=FLAIR_FIRST)
    build.precache(sources, tmp_path / "cache", workers=1, progress=False)
    assert verify.verify_cache(sources, tmp_path / "cache", workers=1, progress=False) == {}


@pytest.fixture(scope="module")
def ci_h5(tmp_path_factory):
    """The ci profile's synthetic cases (in memory) written as HDF5 slices in the package's order."""
    from braintools.profiles import get_profile

    profile, folder = get_profile("ci"), tmp_path_factory.mktemp("ci_h5")
    for index in range(1, profile.n_cases + 1):
        case = make_case(profile.seed, index, profile.grid_shape)
        write_h5_volume({m: case.channel(m) for m in case.modalities}, case.seg, folder, index)
    return folder


def test_the_ci_hdf5_volumes_infer_their_order_and_verify_clean(ci_h5, tmp_path):
    vote = signatures.infer_h5_channel_order(io.find_h5_volumes(ci_h5))
    assert vote.order == io.H5_CHANNEL_ORDER and vote.agreeing == len(vote.guesses) == 3
    sources = h5_sources(ci_h5, channel_order=vote.order)
    build.precache(sources, tmp_path / "cache", workers=1, progress=False)
    assert verify.verify_cache(sources, tmp_path / "cache", workers=1, progress=False) == {}  # no false alarm
    verdicts = []
    for volume, files in io.find_h5_volumes(ci_h5).items():  # every volume as cached: float64, the stored order
        stored = io.load_h5_volume(files, channel_order=io.MODALITIES, modalities=io.MODALITIES)
        check = signatures.check_channel_order(stored.image, stored.seg, io.H5_CHANNEL_ORDER)
        assert not check.contradicted, (volume, check.describe())  # never a false alarm
        verdicts.append(check.verdict)
    assert verdicts.count(signatures.CONFIRMED) >= len(verdicts) - 1, verdicts  # ci volume 3: cannot tell (v3)


def test_verify_fails_when_the_manifest_order_differs_from_the_source(tmp_path):
    write_toy_h5(tmp_path / "h5", volumes=(4,))
    sources = h5_sources(tmp_path / "h5", channel_order=FLAIR_FIRST)
    build.precache(sources, tmp_path / "cache", workers=1, progress=False)
    manifest = store.read_manifest(tmp_path / "cache")
    manifest["cases"]["volume_4"]["channel_order"] = list(io.MODALITIES)  # edited by hand, fingerprint unchanged
    store.write_manifest(tmp_path / "cache", manifest)
    with pytest.raises(DataError, match=r"volume_4 is recorded with HDF5 channel order \('t1', 't1ce'"):
        verify.verify_case(sources[0], tmp_path / "cache")


@pytest.fixture
def no_dataset(tmp_path, monkeypatch):
    """BRAINTOOLS_DATA in an empty folder, ci profile; returns where the ci synthetic dataset would be generated."""
    monkeypatch.setenv("BRAINTOOLS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("BRAINTOOLS_PROFILE", "ci")
    return tmp_path / "data" / "synthetic" / "ci"


@pytest.mark.parametrize("choice", ["flair,t1,t1ce,t2", "infer"])
def test_precache_h5_uses_the_given_or_inferred_channel_order(tmp_path, no_dataset, choice, capsys):
    cases = write_toy_h5(tmp_path / "kaggle" / "content" / "data")
    cache_dir = tmp_path / "cache"
    assert main(["precache", "--source", "h5", "--input", str(tmp_path / "kaggle"), "--channel-order", choice,
                 "--cache-dir", str(cache_dir), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "3 converted" in out
    if choice == "infer":
        assert "HDF5 channel order: ('flair', 't1', 't1ce', 't2') (3 of 3 volumes agree)" in out
    manifest = json.loads((cache_dir / "manifest.json").read_text())
    for volume, (image, _) in cases.items():
        assert manifest["cases"][f"volume_{volume}"]["channel_order"] == list(FLAIR_FIRST)
        cached, _ = store.load_cached_case(cache_dir, f"volume_{volume}", mmap=False)
        np.testing.assert_allclose(cached.astype(np.float32), zscore_brain(image), rtol=2**-10, atol=1e-3)
    assert not no_dataset.exists()  # --input: the profile's synthetic dataset was not generated


def test_precache_h5_stops_when_the_order_cannot_be_inferred(tmp_path, no_dataset, capsys):
    rng = np.random.default_rng(0)
    _, seg = toy_case()
    for volume in (1, 2, 3):
        noise = {m: rng.uniform(50, 1000, seg.shape) for m in io.MODALITIES}  # no brain contrasts at all
        write_h5_volume(noise, seg, tmp_path / "h5", volume)
    assert main(["precache", "--source", "h5", "--input", str(tmp_path / "h5"), "--cache-dir",
                 str(tmp_path / "cache")]) == 2
    assert "cannot tell the HDF5 channel order" in capsys.readouterr().err


def test_a_bad_channel_order_is_one_line_and_status_2(capsys):
    assert main(["precache", "--source", "h5", "--channel-order", "t1,t1,t2,flair"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "must be 'infer' or the four modalities" in error


def test_precache_and_predict_with_input_do_not_generate_the_synthetic_dataset(tmp_path, no_dataset, capsys):
    from helpers import write_case

    write_case(tmp_path / "mine" / "Case_A", "Case_A")
    assert main(["precache", "--input", str(tmp_path / "mine"), "--cache-dir", str(tmp_path / "cache"),
                 "--workers", "1"]) == 0
    assert "1 converted" in capsys.readouterr().out
    empty = tmp_path / "no-checkpoints"
    empty.mkdir()
    assert main(["predict", "--input", str(tmp_path / "mine"), "--checkpoint-dir", str(empty)]) == 2
    assert "no checkpoint" in capsys.readouterr().err  # it got as far as the model, with the user's cases
    assert not no_dataset.exists()
