"""Importing loretta registers both methods with PEFT, and fails loudly if PEFT changed shape."""

import importlib.metadata
import pathlib
import re

import peft
import peft.mapping
import pytest
from packaging.specifiers import SpecifierSet

import loretta
from loretta import LorettaAdpConfig, LorettaRepConfig, LorettaTuner
from loretta.registration import PEFT_RANGE, register

PYPROJECT = pathlib.Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_both_types_sit_in_the_three_dicts():
    for config_cls in (LorettaAdpConfig, LorettaRepConfig):
        key = config_cls.PEFT_TYPE.value  # PEFT looks them up by the string of the JSON file
        assert peft.mapping.PEFT_TYPE_TO_CONFIG_MAPPING[key] is config_cls
        assert peft.mapping.PEFT_TYPE_TO_TUNER_MAPPING[key] is LorettaTuner
        assert peft.mapping.PEFT_TYPE_TO_PREFIX_MAPPING[key] == "loretta_"
    assert "LORETTA_ADP" not in [t.value for t in peft.PeftType]  # not PEFT's own enum


def test_register_is_idempotent_and_refuses_a_foreign_method(monkeypatch):
    register()
    register()
    assert peft.mapping.PEFT_TYPE_TO_CONFIG_MAPPING["LORETTA_REP"] is LorettaRepConfig

    class LorettaRepConfigOfSomeoneElse:
        pass

    monkeypatch.setitem(peft.mapping.PEFT_TYPE_TO_CONFIG_MAPPING, "LORETTA_REP",
                        LorettaRepConfigOfSomeoneElse)
    with pytest.raises(ImportError, match="another method named LORETTA_REP"):
        register()


@pytest.mark.parametrize("attribute", ["PEFT_TYPE_TO_CONFIG_MAPPING",
                                       "PEFT_TYPE_TO_TUNER_MAPPING",
                                       "PEFT_TYPE_TO_PREFIX_MAPPING"])
def test_registry_of_another_shape_fails_loudly(monkeypatch, attribute):
    monkeypatch.setattr(peft.mapping, attribute, [], raising=True)
    with pytest.raises(ImportError, match=rf"peft .* has no peft.mapping.{attribute}; .*"
                                          rf"supported: peft{re.escape(PEFT_RANGE)}"):
        register()


def test_tuner_without_the_state_dict_hooks_fails_loudly(monkeypatch):
    from peft.tuners.tuners_utils import BaseTuner

    monkeypatch.delattr(BaseTuner, "_remap_adapter_state_dict_for_load")
    with pytest.raises(ImportError, match="BaseTuner._remap_adapter_state_dict_for_load"):
        register()


def test_installed_peft_is_in_the_range_pinned_in_pyproject():
    pinned = re.search(r'"peft([<>=!~][^"]*)"', PYPROJECT.read_text()).group(1)
    assert SpecifierSet(pinned) == SpecifierSet(PEFT_RANGE)
    assert importlib.metadata.version("peft") in SpecifierSet(pinned)
    assert loretta.registration.PEFT_RANGE == PEFT_RANGE
