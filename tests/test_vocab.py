import json

import pytest

from sg2img.vocab import (
    COCO_PREDICATES,
    IMAGE_OBJECT,
    NONE_NAME,
    ClassAttributeError,
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


# ------------------------------------------------------------------ class table, stuff
def _tabled(**kw) -> Vocab:
    return Vocab.from_names(["sky", "grass", "sheep", "car"], ["above"],
                            ["white", "green", "red", "blue", "small"],
                            class_attributes={"car": ["red", "blue", "small"],
                                              "sheep": ["white"], "grass": ["green"]},
                            stuff_names=["grass", "sky"], **kw)


def test_class_table_and_stuff_round_trip_and_complete():
    v = _tabled()
    # Every object name gets an entry, in vocabulary order; stuff in vocabulary order too.
    assert v.class_attributes == {"sky": (), "grass": ("green",), "sheep": ("white",),
                                  "car": ("red", "blue", "small")}
    assert v.stuff_names == ("sky", "grass") and v.thing_names() == ["sheep", "car"]
    d = v.to_dict()
    assert d["class_attributes"]["car"] == ["red", "blue", "small"]
    assert d["stuff_names"] == ["sky", "grass"]
    back = Vocab.from_dict(json.loads(json.dumps(d)))
    assert back.class_attributes == v.class_attributes and back.stuff_names == v.stuff_names
    assert back.to_dict() == d


def test_old_dicts_without_a_table_load_and_equality_ignores_the_table():
    v = _tabled()
    old = {k: val for k, val in v.to_dict().items()
           if k not in ("class_attributes", "stuff_names")}
    plain = Vocab.from_dict(old)
    assert plain.class_attributes is None and plain.stuff_names is None
    assert plain.thing_names() is None and plain.class_attribute_names("car") is None
    # The same names at the same ids: the same vocabulary for a model's weights.
    assert plain == v and hash(plain) == hash(v)
    assert plain.to_dict() == old


@pytest.mark.parametrize("change, message", [
    ({"class_attributes": ["car"]}, "must map object names to lists"),
    ({"class_attributes": {"truck": ["red"]}}, r"names 'truck', which is not an object name"),
    ({"class_attributes": {"__image__": []}}, "not an object name"),
    ({"class_attributes": {"car": "red"}}, "must be a list of at most 5 attribute names"),
    ({"class_attributes": {"car": ["red"] * 6}}, "must be a list of at most 5"),
    ({"class_attributes": {"car": ["purple"]}}, r"'purple' is not an attribute name"),
    ({"class_attributes": {"car": [3]}}, "3 is not an attribute name"),
    ({"class_attributes": {"car": ["red", "red"]}}, "lists an attribute twice"),
    ({"class_attributes": {f"o{i}": [] for i in range(9)}}, "has 9 entries but the "
                                                            "vocabulary has 4 object names"),
    ({"stuff_names": "sky"}, "'stuff_names' must be a list"),
    ({"stuff_names": ["sky", "lake"]}, r"names 'lake', which is not an object name"),
    ({"stuff_names": ["sky", "sky"]}, "lists an object name twice"),
    ({"stuff_names": [["sky"]]}, "not an object name"),
])
def test_a_bad_table_or_stuff_list_is_refused_clearly(change, message):
    with pytest.raises(VocabError, match=message):
        Vocab.from_dict({**_tabled().to_dict(), **change})


def test_a_table_needs_attributes():
    with pytest.raises(VocabError, match="needs an attribute vocabulary.*remove "
                                         "'class_attributes'"):
        Vocab.from_names(["car"], ["above"], class_attributes={"car": []})


def test_check_class_attributes_names_what_the_class_takes():
    v = _tabled()
    v.check_class_attributes("car", ["red", "small"])
    v.check_class_attributes("sky", [])
    with pytest.raises(ClassAttributeError) as e:
        v.check_class_attributes("car", ["red", "white"], "object 3 (car)")
    assert str(e.value) == ("object 3 (car) does not take 'white' in this model's data; "
                            "car takes: red, blue, small")
    assert e.value.attribute == "white" and e.value.suggestions == ("red", "blue", "small")
    with pytest.raises(ClassAttributeError, match=r"^sky takes no attributes in this model's "
                                                  r"data; give it none \(\[\]\)$") as e:
        v.check_class_attributes("sky", ["blue"])
    assert e.value.suggestions == () and isinstance(e.value, VocabError)
    # Without a table nothing can be checked.
    Vocab.from_names(["car"], ["above"], ["white"]).check_class_attributes("car", ["white"])


def test_describe_is_plain_json():
    d = _tabled().describe()
    assert d == {"objects": ["sky", "grass", "sheep", "car"], "things": ["sheep", "car"],
                 "stuff": ["sky", "grass"], "predicates": ["above"],
                 "attributes": ["white", "green", "red", "blue", "small"],
                 "class_attributes": {"sky": [], "grass": ["green"], "sheep": ["white"],
                                      "car": ["red", "blue", "small"]},
                 "default_attributes": None}
    assert json.loads(json.dumps(d)) == d
    bare = Vocab.from_names(["sky"], ["above"]).describe()
    assert bare == {"objects": ["sky"], "things": None, "stuff": None, "predicates": ["above"],
                    "attributes": None, "class_attributes": None, "default_attributes": None}


def test_coco_categories_say_stuff_when_every_category_says_isthing():
    cats = [{"id": 1, "name": "car", "isthing": 1}, {"id": 3, "name": "sky", "isthing": 0}]
    v = Vocab.from_coco_categories(iter(cats))       # any iterable, read once
    assert v.stuff_names == ("sky",) and v.thing_names() == ["car"]
    # Real COCO-Stuff files do not say; neither does the vocabulary then.
    assert Vocab.from_coco_categories([{"id": 1, "name": "car"}, {"id": 3, "name": "sky"}]
                                      ).stuff_names is None
