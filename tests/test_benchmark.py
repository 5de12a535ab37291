"""The timing helpers the benchmark scripts share (sg2img.benchmark) and their random scenes."""

import json
import math

import pytest
import torch

from sg2img import benchmark
from sg2img.benchmark import (
    interleaved_times,
    median_time,
    parse_variants,
    per_round_ratios,
    set_threads,
    thread_env,
    timed_calls,
    write_json,
)
from sg2img.testing import PRESET_VOCAB_SIZES, numbered_vocab, random_scene_batch


def test_timed_calls_and_median_time_count_the_calls(monkeypatch):
    clock = iter(range(100))
    monkeypatch.setattr(benchmark.time, "perf_counter", lambda: float(next(clock)))
    calls = []
    assert timed_calls(lambda: calls.append(1), 3) == [1.0, 1.0, 1.0]
    assert len(calls) == 3
    assert median_time(lambda: calls.append(1), 5, warmup=2) == 1.0
    assert len(calls) == 3 + 2 + 5


def test_interleaved_times_rotate_the_order_every_round():
    order = []
    times = interleaved_times({k: (lambda k=k: order.append(k)) for k in "abc"}, 4)
    assert order == list("abc" "bca" "cab" "abc")
    assert {k: len(v) for k, v in times.items()} == {"a": 4, "b": 4, "c": 4}
    order.clear()
    interleaved_times({"plain": lambda: order.append("p"), "fused": lambda: order.append("f")},
                      3)
    assert order == list("pf" "fp" "pf")                      # reversed every other round


def test_per_round_ratios_need_series_of_one_length():
    assert per_round_ratios([2.0, 3.0], [1.0, 2.0]) == [2.0, 1.5]
    with pytest.raises(ValueError):
        per_round_ratios([1.0], [1.0, 2.0])


def test_set_threads_and_thread_env():
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="at least 1"):
        set_threads(0)
    env = thread_env(3)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"


def test_load_average_is_three_numbers():
    load = benchmark.load_average()
    assert len(load) == 3 and all(isinstance(x, float) for x in load)
    assert all(math.isnan(x) or x >= 0 for x in load)


def test_write_json_writes_indented_json_without_a_trailing_newline(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"a": [1, 2]})
    assert path.read_text() == json.dumps({"a": [1, 2]}, indent=2)


def test_parse_variants_takes_a_precision_beside_config_overrides():
    variants, precisions = parse_variants(
        ["bf16:precision=bf16",
         "w32:model.renderer.channels=32,precision=fp32,model.spade_kernel=1"])
    assert variants == {"sg2img[bf16]": [],
                        "sg2img[w32]": ["model.renderer.channels=32", "model.spade_kernel=1"]}
    assert precisions == {"sg2img[bf16]": "bf16", "sg2img[w32]": "fp32"}
    for bad, words in [("x:precision=fp16", "fp32 or bf16"), ("sg2im:a=1", "LABEL:KEY"),
                       ("x:model.renderer.channels", "not KEY=VALUE"), ("nolabel", "LABEL:KEY")]:
        with pytest.raises(ValueError, match=words):
            parse_variants([bad])
    with pytest.raises(ValueError, match="--also 'a:y=2': .*given twice"):
        parse_variants(["a:x=1", "a:y=2"])


def test_random_scene_batch_has_the_vocabulary_sizes_and_is_seeded():
    vocab = numbered_vocab(*PRESET_VOCAB_SIZES["coco64"])
    assert (vocab.num_objects, vocab.num_preds) == (184, 7)
    a = random_scene_batch(vocab, 3, 32, 8, seed=5, num_classes_used=20)
    b = random_scene_batch(vocab, 3, 32, 8, seed=5, num_classes_used=20)
    assert a.num_images == 3 and torch.equal(a.objs, b.objs) and torch.equal(a.boxes, b.boxes)
    assert int(a.objs.max()) < 20 and a.masks is not None
    assert random_scene_batch(vocab, 2, 32, 8, vg=True).masks is None


def test_a_cpu_device_needs_no_synchronisation(monkeypatch):
    synced = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: synced.append(d))
    benchmark.synchronize(None)
    benchmark.synchronize("cpu")
    assert median_time(lambda: None, 2, device=torch.device("cpu")) >= 0
    assert synced == []
    benchmark.synchronize("cuda:0")
    assert synced == [torch.device("cuda:0")]


def test_precision_choices_are_the_models():
    from sg2img.model import PRECISIONS

    assert benchmark.PRECISION_CHOICES == tuple(PRECISIONS)
