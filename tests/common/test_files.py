"""One JSON sanitiser and one safe-filename helper (gensc.common.files)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gensc.common.files import emit, json_safe, json_text, safe_filename, write_json


def test_non_finite_numbers_become_null_everywhere():
    obj = {"a": math.inf, "b": [1.5, -math.inf, (math.nan, 2)], "c": np.float32("nan"), "d": np.arange(2)}
    assert json_safe(obj) == {"a": None, "b": [1.5, None, [None, 2]], "c": None, "d": [0, 1]}
    assert json.loads(json_text(obj)) == json_safe(obj)  # strict JSON: no Infinity / NaN tokens
    assert "Infinity" not in json_text({"x": float("inf")}) and "NaN" not in json_text({"x": math.nan})


def test_emit_prints_the_result_and_writes_it_only_when_asked(tmp_path, capsys):
    result = {"psnr_db": math.inf, "rows": [1, 2]}
    emit(result, None)
    assert json.loads(capsys.readouterr().out) == {"psnr_db": None, "rows": [1, 2]}
    assert list(tmp_path.iterdir()) == []
    emit(result, tmp_path / "r.json")
    printed = json.loads(capsys.readouterr().out)
    assert json.loads((tmp_path / "r.json").read_text()) == printed


def test_write_json_leaves_no_temporary_file(tmp_path):
    path = write_json(tmp_path / "r.json", {"psnr_db": math.inf})
    assert json.loads(path.read_text()) == {"psnr_db": None}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


@pytest.mark.parametrize(
    "text,want",
    [
        ("text+latent", "text_latent"),
        ("a b/c\\d", "a_b_c_d"),
        ("../../etc/passwd", "_.._etc_passwd"),  # no separator left: it stays in its folder
        ("katze-ü.png", "katze-_.png"),
        ("..", "item"),
        ("-rf", "rf"),
        (".-.bashrc", "bashrc"),
        ("", "item"),
    ],
)
def test_safe_filename_keeps_names_inside_their_folder(text, want):
    assert safe_filename(text) == want
