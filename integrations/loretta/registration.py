"""LoRETTA_adp and LoRETTA_rep registered with PEFT (done when ``loretta`` is imported).

PEFT dispatches every method through three dicts of ``peft.mapping`` (config class, tuner
class and state-dict prefix by ``peft_type``). ``peft.register_peft_method`` accepts only the
members of PEFT's own ``PeftType``, so :func:`register` writes the three dicts directly, after
checking that PEFT still has the shape this package was written against (the dicts, and the
tuner's state-dict hooks of PEFT >= 0.21): otherwise importing ``loretta`` fails with a message
that says what is missing.
"""

from __future__ import annotations

from .config import LorettaAdpConfig, LorettaRepConfig
from .tuner import LorettaTuner

#: The PEFT versions this package is tested with (as pinned in pyproject.toml).
PEFT_RANGE = ">=0.21,<0.22"
_DICTS = ("PEFT_TYPE_TO_CONFIG_MAPPING", "PEFT_TYPE_TO_TUNER_MAPPING",
          "PEFT_TYPE_TO_PREFIX_MAPPING")
_HOOKS = ("_get_adapter_state_dict", "_remove_adapter_name_from_key",
          "_remap_adapter_state_dict_for_load")


def register() -> None:
    """Put LORETTA_ADP and LORETTA_REP into PEFT's registry (idempotent).

    Raises:
        ImportError: PEFT lacks a dict or hook used here, or holds another method of that name.

    Example:
        >>> import peft
        >>> from loretta import LorettaAdpConfig
        >>> from loretta.registration import register
        >>> register()
        >>> peft.mapping.PEFT_TYPE_TO_CONFIG_MAPPING["LORETTA_ADP"] is LorettaAdpConfig
        True
    """
    import peft
    import peft.mapping
    from peft.tuners.tuners_utils import BaseTuner

    missing = [f"peft.mapping.{name}" for name in _DICTS
               if not isinstance(getattr(peft.mapping, name, None), dict)]
    missing += [f"BaseTuner.{hook}" for hook in _HOOKS if not hasattr(BaseTuner, hook)]
    if missing:
        raise ImportError(f"loretta: peft {peft.__version__} has no {', '.join(missing)}; "
                          f"loretta registers with PEFT through them (supported: peft{PEFT_RANGE})")
    configs, tuners, prefixes = (getattr(peft.mapping, name) for name in _DICTS)
    for config_cls in (LorettaAdpConfig, LorettaRepConfig):
        peft_type = config_cls.PEFT_TYPE
        held = configs.get(peft_type)
        if held is not None and held.__qualname__ != config_cls.__qualname__:
            raise ImportError(f"loretta: PEFT holds another method named {peft_type.value} "
                              f"({held.__module__}.{held.__qualname__})")
        configs[peft_type] = config_cls
        tuners[peft_type] = LorettaTuner
        prefixes[peft_type] = LorettaTuner.prefix
