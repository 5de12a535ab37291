import json

import pytest
import torch

from sg2img.config import PRESETS, Config, ConfigError


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_and_round_trip(name, tmp_path):
    cfg = Config.from_preset(name)
    d = json.loads(cfg.to_json())
    assert Config.from_dict(d) == cfg
    # plain types only: loadable with weights_only=True inside a checkpoint
    torch.save({"config": cfg.to_dict()}, tmp_path / "c.pt")
    assert torch.load(tmp_path / "c.pt", weights_only=True)["config"] == cfg.to_dict()


def test_overrides_cast_to_field_type():
    cfg = Config.from_preset("tiny", ["model.gconv_dim=32", "train.lr_g=0.5",
                                      "model.use_local=false", "model.fusion=average"])
    assert cfg.model.gconv_dim == 32 and isinstance(cfg.model.gconv_dim, int)
    assert cfg.train.lr_g == 0.5
    assert cfg.model.use_local is False
    assert cfg.model.fusion == "average"
    assert Config.from_preset("tiny").model.use_local is True


def test_bad_overrides_and_values():
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        Config.from_preset("huge")
    with pytest.raises(ConfigError, match="unknown config key 'model.gconv_dimm'"):
        Config.from_preset("tiny", ["model.gconv_dimm=3"])
    with pytest.raises(ConfigError, match="unknown config key 'modle.x'"):
        Config.from_preset("tiny", ["modle.x=3"])
    with pytest.raises(ConfigError, match="cannot read 'abc' as int"):
        Config.from_preset("tiny", ["model.gconv_dim=abc"])
    with pytest.raises(ConfigError, match="section.key=value"):
        Config.from_preset("tiny", ["model.gconv_dim"])
    with pytest.raises(ConfigError, match="cannot both be false"):
        Config.from_preset("tiny", ["model.use_local=0", "model.use_global=0"])
    with pytest.raises(ConfigError, match="fusion"):
        Config.from_preset("tiny", ["model.fusion=max"])
    with pytest.raises(ConfigError, match="unknown keys in config section 'train'"):
        Config.from_dict({"train": {"nope": 1}})
    assert isinstance(ConfigError("x"), ValueError)
