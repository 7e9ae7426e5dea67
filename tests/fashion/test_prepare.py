"""prepare.py on the real Fashion-MNIST: shapes, order, determinism, and one-line errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.fashion.conftest import RAW_FILES, run_prepare


def test_writes_exactly_the_three_splits(prepared):
    assert sorted(p.name for p in prepared.iterdir()) == ["test.npz", "train.npz", "validation.npz"]


@pytest.mark.parametrize("split, rows", [("train", 54000), ("validation", 6000), ("test", 10000)])
def test_each_split_holds_uint8_images_and_labels(prepared, split, rows):
    with np.load(prepared / f"{split}.npz") as data:
        assert sorted(data.files) == ["x", "y"]
        assert data["x"].shape == (rows, 28, 28) and data["x"].dtype == np.uint8
        assert data["y"].shape == (rows,) and data["y"].dtype == np.uint8
        assert np.bincount(data["y"], minlength=10).tolist() == [rows // 10] * 10  # stratified


def test_test_set_keeps_its_original_order(prepared):
    with np.load(prepared / "test.npz") as data:
        assert data["y"][:3].tolist() == [9, 2, 1]


def test_train_and_validation_partition_the_training_rows(prepared):
    with np.load(prepared / "train.npz") as train, np.load(prepared / "validation.npz") as validation:
        rows = {row.tobytes() for row in train["x"][:2000]}
        assert not rows & {row.tobytes() for row in validation["x"]}


def test_output_is_byte_identical_across_runs(raw_dir, prepared, tmp_path):
    result = run_prepare(raw_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("train.npz", "validation.npz", "test.npz"):
        assert (tmp_path / name).read_bytes() == (prepared / name).read_bytes(), name


def test_missing_raw_file_is_one_line_naming_it_and_the_fix(raw_dir, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in RAW_FILES[1:]:
        (raw / name).symlink_to(raw_dir / name)
    result = run_prepare(raw, tmp_path / "out")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert RAW_FILES[0].removesuffix(".gz") in result.stderr and "invoke data.seed" in result.stderr


def test_wrong_magic_is_one_line_naming_the_file(raw_dir, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in RAW_FILES:
        (raw / name).symlink_to(raw_dir / name)
    (raw / RAW_FILES[3]).unlink()
    shutil.copy(raw_dir / RAW_FILES[2], raw / RAW_FILES[3])  # images where labels belong
    result = run_prepare(raw, tmp_path / "out")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert RAW_FILES[3] in result.stderr and "magic" in result.stderr and "invoke data.seed" in result.stderr


@pytest.mark.parametrize(
    "prepare_section, mentions",
    [
        ("{seed: 42}", "validation_fraction"),
        ("{validation_fraction: 1.5, seed: 42}", "validation_fraction"),
        ("{validation_fraction: '0.1', seed: 42}", "validation_fraction"),
        ("{validation_fraction: 0.1, seed: 4.2}", "seed"),
    ],
)
def test_bad_params_are_one_line_naming_the_key(raw_dir, tmp_path, prepare_section, mentions):
    params = tmp_path / "params.yaml"
    params.write_text(f"prepare: {prepare_section}\n")
    result = run_prepare(raw_dir, tmp_path / "out", params)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert mentions in result.stderr
    assert not (tmp_path / "out").exists()
