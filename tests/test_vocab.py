import json

import pytest

from sg2img.vocab import (
    COCO_PREDICATES,
    IMAGE_OBJECT,
    NONE_NAME,
    UnknownNameError,
    Vocab,
    VocabError,
)


def test_from_names_reserves_index_zero(vocab):
    assert vocab.object_names[0] == IMAGE_OBJECT
    assert vocab.pred_names[0] == "__in_image__"
    assert vocab.object_idx("sheep") == 3
    assert vocab.pred_idx("above") == 3
    assert vocab.num_objects == 7 and vocab.num_preds == 8


def test_unknown_name_lists_closest(vocab):
    with pytest.raises(UnknownNameError, match=r"'shep'.*sheep"):
        vocab.object_idx("shep")
    with pytest.raises(UnknownNameError, match=r"standing on"):
        vocab.pred_idx("standing onn")
    # internal names are not user names
    with pytest.raises(UnknownNameError):
        vocab.object_idx(IMAGE_OBJECT)
    with pytest.raises(UnknownNameError):
        vocab.pred_idx("__in_image__")
    assert isinstance(UnknownNameError("x"), ValueError)


def test_json_round_trip_sg2im_keys(vocab, tmp_path):
    path = tmp_path / "vocab.json"
    vocab.save(path)
    data = json.loads(path.read_text())
    assert set(data) == {"object_idx_to_name", "object_name_to_idx", "pred_idx_to_name",
                         "pred_name_to_idx"}
    assert data["object_name_to_idx"]["sheep"] == 3
    assert Vocab.load(path) == vocab


def test_from_name_to_idx_only_and_attributes():
    d = {"object_name_to_idx": {"__image__": 0, "cat": 2},
         "pred_name_to_idx": {"__in_image__": 0, "on": 1},
         "attribute_name_to_idx": {"red": 0, "big": 1}}
    v = Vocab.from_dict(d)
    assert v.object_names == ("__image__", NONE_NAME, "cat")
    assert v.attribute_idx("big") == 1
    assert Vocab.from_dict(v.to_dict()) == v


def test_bad_vocab_files(tmp_path):
    with pytest.raises(VocabError, match="not found"):
        Vocab.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(VocabError, match="not valid JSON"):
        Vocab.load(bad)
    with pytest.raises(VocabError, match="missing 'pred_idx_to_name'"):
        Vocab.from_dict({"object_idx_to_name": ["__image__"]})
    with pytest.raises(VocabError, match="index 0"):
        Vocab(("cat",), ("__in_image__",))
    with pytest.raises(VocabError, match="duplicate"):
        Vocab.from_names(["cat", "cat"], ["on"])
    with pytest.raises(VocabError, match="disagree"):
        Vocab.from_dict({"object_idx_to_name": ["__image__", "cat"],
                         "object_name_to_idx": {"cat": 0},
                         "pred_idx_to_name": ["__in_image__"]})


def test_coco_vocab_keeps_raw_ids():
    # COCO-Stuff: things 1..90 with gaps, stuff 92..182, 'other' 183.
    things = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"},
              {"id": 90, "name": "toothbrush"}]
    stuff = [{"id": i, "name": f"stuff{i}"} for i in range(92, 184)]
    v = Vocab.from_coco_categories(things + stuff)
    assert v.num_objects == 184
    assert v.object_idx("car") == 3
    assert v.object_names[2] == NONE_NAME
    with pytest.raises(UnknownNameError):
        v.object_idx(NONE_NAME)
    assert v.pred_names == COCO_PREDICATES
    assert v.pred_idx("surrounding") == 6
    with pytest.raises(VocabError, match="reserved"):
        Vocab.from_coco_categories([{"id": 0, "name": "x"}])


def test_attributes_missing_is_clear(vocab):
    with pytest.raises(VocabError, match="no attributes"):
        vocab.attribute_idx("red")
