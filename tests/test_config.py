import json

import pytest
import torch

from sg2img.config import PRESETS, Config, ConfigError, ignored_settings
from sg2img.config_aliases import MODEL_KEY_ALIASES, NEW_MODEL_KEYS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_and_round_trip(name, tmp_path):
    cfg = Config.from_preset(name)
    d = json.loads(cfg.to_json())
    assert Config.from_dict(d) == cfg
    # plain types only: loadable with weights_only=True inside a checkpoint
    torch.save({"config": cfg.to_dict()}, tmp_path / "c.pt")
    assert torch.load(tmp_path / "c.pt", weights_only=True)["config"] == cfg.to_dict()


def test_overrides_cast_to_field_type():
    cfg = Config.from_preset("tiny", ["model.layout.gconv_dim=32", "train.lr_g=0.5",
                                      "model.discriminator.use_object_disc=false",
                                      "model.renderer.fusion=average"])
    assert cfg.model.layout.gconv_dim == 32 and isinstance(cfg.model.layout.gconv_dim, int)
    assert cfg.train.lr_g == 0.5
    assert cfg.model.discriminator.use_object_disc is False
    assert cfg.model.renderer.fusion == "average"
    assert Config.from_preset("tiny").model.renderer.use_local is True


BAD_OVERRIDES = [   # (preset overrides, what the error must say)
    (["model.gconv_dimm=3"], "unknown config key 'model.gconv_dimm'"),
    (["modle.x=3"], "unknown config key 'modle.x'"),
    (["model.layout.gconv_dim=abc"], "cannot read 'abc' as int"),
    (["model.layout.gconv_dim"], "section.key=value"),
    (["model.renderer.use_local=0", "model.renderer.use_global=0"], "cannot both be false"),
    (["model.renderer.fusion=max"], "fusion"),
    # Choices are named in the message.
    (["model.renderer.global_generator=ccfpse"], "'spade', 'cc', 'dp'"),
    (["model.discriminator.kind=patch"], "model.discriminator.kind"),
    (["model.renderer.noise=spatial", "model.renderer.layout_noise_dim=0"], "layout_noise_dim"),
    (["loss.mode_seek_weight=-1"], "mode_seek_weight"),
    (["loss.recon_noise=mean"], "loss.recon_noise must be one of .'same', 'zero'."),
]


@pytest.mark.parametrize("overrides,message", BAD_OVERRIDES)
def test_bad_overrides_and_values_name_the_problem(overrides, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_preset("tiny", overrides)


def test_bad_presets_sections_and_error_type():
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        Config.from_preset("huge")
    with pytest.raises(ConfigError, match="unknown keys in config section 'train'"):
        Config.from_dict({"train": {"nope": 1}})
    assert isinstance(ConfigError("x"), ValueError)


def test_defaults_are_the_recommended_model_and_presets_are_plain_literals():
    model = Config().model
    assert model.renderer.paint_attributes and model.discriminator.classify_attributes
    assert (model.renderer.global_generator, model.discriminator.kind, model.renderer.noise) == (
        "spade", "multiscale", "vector")
    assert not model.renderer.narrow_upsample    # the paper's SPADE generator
    assert not hasattr(model, "spade_kernel")    # failed its quality gate: removed
    for name, preset in PRESETS.items():
        assert all(isinstance(v, (int, float, bool, str)) for v in preset.values()), name
    for name in ("coco64", "coco128", "vg64", "vg128"):
        assert PRESETS[name]["model.renderer.narrow_upsample"] is True


@pytest.mark.parametrize("overrides,key", [
    (["model.renderer.global_generator=cc", "model.renderer.narrow_upsample=true"],
     "model.renderer.narrow_upsample"),
    (["model.renderer.use_global=false", "model.renderer.narrow_upsample=true"],
     "model.renderer.narrow_upsample"),
    (["model.renderer.use_local=false", "model.renderer.fusion=average"], "model.renderer.fusion"),
    (["model.renderer.use_local=false", "model.renderer.local_combine=sum"],
     "model.renderer.local_combine"),
    (["model.layout.num_components=3"], "model.layout.num_components"),
    (["model.layout.sequential=false"], "model.layout.sequential"),
    (["loss.seg_weight=2"], "loss.seg_weight"),
    (["model.discriminator.classify_attributes=false", "loss.obj_attr_weight=1"],
     "loss.obj_attr_weight"),
])
def test_a_setting_the_architecture_ignores_is_an_error_that_names_the_fix(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.") + ".* has no effect unless"):
        Config.from_preset("tiny", overrides)
    # The same check for a config read from a file or a checkpoint.
    d = Config.from_preset("tiny").to_dict()
    for item in overrides:
        k, v = item.split("=")
        *secs, name = k.split(".")
        sec = d
        for part in secs:
            sec = sec[part]
        sec[name] = (v == "true") if v in ("true", "false") else type(sec[name])(v)
    assert [k for k, _ in ignored_settings(d)] == [key]
    with pytest.raises(ConfigError, match="drop the setting"):
        Config.from_dict(d)


def test_defaults_are_never_ignored_settings_and_what_is_read_is_allowed():
    # Defaults of keys the chosen architecture ignores are not settings.
    for overrides in (["model.renderer.global_generator=cc"], ["model.renderer.use_local=false"],
                      ["model.discriminator.use_object_disc=false"],
                      ["model.discriminator.kind=fpse"]):
        Config.from_preset("tiny", overrides)
    assert ignored_settings(Config().to_dict()) == []
    cfg = Config.from_preset("tiny", ["model.layout.head=sample", "model.layout.num_components=3",
                                      "model.discriminator.kind=dp", "loss.seg_weight=2"])
    assert cfg.model.layout.num_components == 3 and cfg.loss.seg_weight == 2


def test_a_presets_setting_that_an_override_makes_pointless_goes_back_to_its_default():
    cfg = Config.from_preset("coco64", ["model.renderer.global_generator=dp"])
    assert cfg.model.renderer.narrow_upsample is False
    assert cfg.model.renderer.global_generator == "dp"
    assert Config.from_preset("coco64").model.renderer.narrow_upsample is True
    with pytest.raises(ConfigError, match="narrow_upsample"):      # given explicitly: an error
        Config.from_preset("coco64", ["model.renderer.global_generator=dp",
                                      "model.renderer.narrow_upsample=true"])


def _grouped_keys(section: dict, prefix: str = "") -> set[str]:
    return {k for name, v in section.items() for k in (
        _grouped_keys(v, f"{prefix}{name}.") if isinstance(v, dict) else [prefix + name])}


def test_every_model_key_is_grouped_and_every_old_name_has_one_new_place():
    model = Config().to_dict()["model"]
    assert set(model) == {"layout", "renderer", "discriminator"}
    assert sorted(MODEL_KEY_ALIASES.values()) == sorted(_grouped_keys(model) - NEW_MODEL_KEYS)
    assert NEW_MODEL_KEYS <= _grouped_keys(model)


@pytest.mark.parametrize("old,new", sorted(MODEL_KEY_ALIASES.items()))
def test_an_old_model_key_still_works_with_a_warning_naming_the_new_one(old, new):
    value = Config().to_dict()["model"]
    for part in new.split("."):
        value = value[part]
    with pytest.warns(FutureWarning, match=rf"model\.{old} is a deprecated name.*"
                                           rf"use model\.{new.replace('.', r'[.]')}\b"):
        cfg = Config.from_preset("tiny", {f"model.{old}": value})
    assert cfg == Config.from_preset("tiny", {f"model.{new}": value})


def test_old_names_on_the_command_line_in_files_and_with_overrides():
    with pytest.warns(FutureWarning) as caught:
        cfg = Config.from_preset("tiny", ["model.discriminator=fpse", "model.gconv_dim=32"])
    assert "use model.discriminator.kind" in str(caught[0].message)
    assert cfg.model.discriminator.kind == "fpse" and cfg.model.layout.gconv_dim == 32
    with pytest.warns(FutureWarning, match="use model.renderer.use_local"):
        assert not cfg.with_overrides(["model.use_local=false"]).model.renderer.use_local
    flat = {"model": {"layout_head": "sample", "discriminator": "dp",
                      "renderer": {"image_size": 32}}}
    with pytest.warns(FutureWarning) as caught:
        cfg = Config.from_dict(flat)
    assert len(caught) == 2
    assert (cfg.model.layout.head, cfg.model.discriminator.kind) == ("sample", "dp")
    assert cfg.model.renderer.image_size == 32


def test_an_old_name_with_its_new_one_is_an_error():
    with pytest.warns(FutureWarning), pytest.raises(ConfigError, match=(
            r"model\.gconv_dim and model\.layout\.gconv_dim are the same setting")):
        Config.from_preset("tiny", ["model.layout.gconv_dim=8", "model.gconv_dim=16"])
    with pytest.raises(ConfigError, match=r"model\.noise and model\.renderer\.noise"):
        Config.from_dict({"model": {"noise": "spatial", "renderer": {"noise": "vector"}}})


def test_grouped_keys_errors_name_the_section_and_close_keys():
    with pytest.raises(ConfigError, match=r"section 'model' has \['layout.gconv_dim'"):
        Config.from_preset("tiny", ["model.gconv_dimm=3"])
    with pytest.raises(ConfigError, match="model.layout is a section"):
        Config.from_preset("tiny", ["model.layout=3"])
    with pytest.raises(ConfigError, match="model has no section 'decoder'"):
        Config.from_preset("tiny", ["model.decoder.width=3"])
    with pytest.raises(ConfigError, match="unknown keys in config section 'model.renderer'"):
        Config.from_dict({"model": {"renderer": {"nope": 1}}})
