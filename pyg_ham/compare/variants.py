r"""Optimizer variants: ``"adamw"``, ``"adamw+ham:alpha=100,beta=0.01"``, ``"sgd:lr=0.1"``,
``"adam+sam+ham:rho=0.1"``.

A variant string is an optimizer name (a ``torch.optim`` or ``pytorch-optimizer`` name, or
``pytorch_optimizer:NAME``), an optional ``+sam`` (sharpness-aware minimization around it), an
optional ``+ham`` (HAM on; without it HAM is off) and optional ``:key=value,...`` overrides of
:class:`~pyg_ham.train.config.ExperimentConfig` fields. Settings that define the data, the
seeds or the splits cannot be overridden: every variant of a comparison sees exactly the same
runs (that is what makes it *paired*).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import yaml

from pyg_ham.errors import ConfigError
from pyg_ham.train.config import ExperimentConfig, no_clamp_as_none

__all__ = ["Variant", "parse_variant", "parse_variants", "default_variants", "load_variants_file",
           "baseline_of", "variant_of_config", "PAIRING_KEYS", "HAM_KEYS", "SAM_KEYS"]

#: Settings shared by every variant of a comparison (data, seeds, splits, output).
PAIRING_KEYS = ("dataset", "root", "dataset_options", "seed", "runs", "folds", "repeats", "protocol",
                "out", "checkpoint_dir", "resume", "quiet", "device", "ham", "sam", "optimizer")
#: Settings that only matter when HAM is on.
HAM_KEYS = ("alpha", "beta", "max_exponent")
#: Settings that only matter with SAM.
SAM_KEYS = ("rho", "adaptive")
_SOURCE = re.compile(r"^(torch|pytorch_optimizer):", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Variant:
    r"""One optimizer setting of a comparison.

    Args:
        optimizer (str): optimizer name (``sgd``, ``adam``, ``adamw``, any ``torch.optim`` or
            ``pytorch-optimizer`` name).
        ham (bool): wrap the optimizer in HAM.
        overrides (dict): :class:`ExperimentConfig` fields set for this variant only.
        sam (bool): sharpness-aware minimization around the optimizer (inside HAM).
    """

    optimizer: str
    ham: bool = False
    overrides: Dict[str, Any] = field(default_factory=dict)
    sam: bool = False

    @property
    def label(self) -> str:
        """The canonical variant string (parses back to an equal variant)."""
        text = self.optimizer + ("+sam" if self.sam else "") + ("+ham" if self.ham else "")
        if self.overrides:
            text += ":" + ",".join(f"{k}={_format_value(v)}" for k, v in self.overrides.items())
        return text

    @property
    def slug(self) -> str:
        """A file-name-safe form of :attr:`label` (``adamw+ham_alpha=100_beta=0.01``)."""
        return re.sub(r"[^A-Za-z0-9.=+\-]", "_", self.label.replace(":", "_").replace(",", "_"))

    def __str__(self) -> str:
        return self.label

    def apply(self, cfg: ExperimentConfig) -> ExperimentConfig:
        """:obj:`cfg` with this variant's optimizer, HAM switch and overrides (validated)."""
        values = {"optimizer": self.optimizer, "ham": self.ham, "sam": self.sam, **self.overrides}
        try:  # the copy is validated when created
            return dataclasses.replace(cfg, **values)  # unlike cfg.replace, keeps explicit None values
        except (TypeError, ConfigError) as exc:  # unknown keys are refused when parsing
            raise ConfigError(f"variant {self.label!r}: {exc}") from None


def _format_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def _coerce(key: str, raw: str, text: str) -> Any:
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):  # YAML 1.1 reads 1e-5 (no dot) as a string
        for number in (int, float):  # "5" -> 5, "1e-5" / "inf" -> float
            try:
                value = number(value)
                break
            except ValueError:
                pass
    if isinstance(value, (dict, list)):
        raise ConfigError(f"variant {text!r}: {key}={raw} must be a single value (lists and mappings are not "
                          f"supported in variant strings; set them in the config)")
    if value in ("none", "None") and key in ("max_exponent", "jk", "sparsifier", "model", "patience", "norm"):
        value = None
    default = next(f for f in dataclasses.fields(ExperimentConfig) if f.name == key).default
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if key == "max_exponent" and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = no_clamp_as_none(float(value))
    return value


def parse_variant(text: str) -> Variant:
    r"""Parse one variant string, e.g. ``"adamw+ham:alpha=100,beta=0.01"``.

    Raises:
        ConfigError: naming the bad part and the allowed values.
    """
    original = text
    text = text.strip()
    if not text:
        raise ConfigError("empty variant; expected OPTIMIZER[+sam][+ham][:key=value,...], e.g. adamw+ham:alpha=100")
    source = _SOURCE.match(text)
    prefix = source.group(0).lower() if source else ""
    head, _, tail = text[len(prefix):].partition(":")
    head = head.strip()
    name, *suffixes = head.split("+")
    flags = [suffix.strip().lower() for suffix in suffixes]
    for suffix in flags:
        if suffix not in ("ham", "sam"):
            raise ConfigError(f"variant {original!r}: unknown suffix '+{suffix}'; the suffixes are +sam and +ham")
        if flags.count(suffix) > 1:
            raise ConfigError(f"variant {original!r}: +{suffix} is given twice")
    head, ham, sam = name.strip(), "ham" in flags, "sam" in flags
    if not _NAME.match(head):
        raise ConfigError(f"variant {original!r}: {head!r} is not an optimizer name; expected "
                          f"OPTIMIZER[+sam][+ham][:key=value,...] with OPTIMIZER such as sgd, adam, adamw")
    from pyg_ham.optim import optimizer_class

    try:
        optimizer_class(prefix + head)
    except ConfigError as exc:
        raise ConfigError(f"variant {original!r}: {exc}") from None
    overrides: Dict[str, Any] = {}
    if tail.strip():
        allowed = [k for k in ExperimentConfig.field_names() if k not in PAIRING_KEYS]
        for item in tail.split(","):
            if "=" not in item:
                raise ConfigError(f"variant {original!r}: expected key=value after ':', got {item.strip()!r}")
            key, raw = (s.strip() for s in item.split("=", 1))
            key = key.replace("-", "_")
            if key in PAIRING_KEYS:
                why = ("use +ham in the variant name" if key == "ham" else
                       "use +sam in the variant name" if key == "sam" else
                       "the optimizer is the variant's name" if key == "optimizer" else
                       "every variant must see the same data, seeds and splits; set it for the whole comparison")
                raise ConfigError(f"variant {original!r}: {key} cannot differ between variants ({why})")
            if key not in allowed:
                raise ConfigError(f"variant {original!r}: unknown setting {key!r}; allowed: {', '.join(allowed)}")
            if key in overrides:
                raise ConfigError(f"variant {original!r}: {key} is given twice")
            overrides[key] = _coerce(key, raw, original)
    if not ham:
        stray = [k for k in overrides if k in HAM_KEYS]
        if stray:
            raise ConfigError(f"variant {original!r}: {', '.join(stray)}: HAM settings, unused without HAM; "
                              f"write {head}+ham:... or drop them")
    if not sam:
        stray = [k for k in overrides if k in SAM_KEYS]
        if stray:
            raise ConfigError(f"variant {original!r}: {', '.join(stray)}: SAM settings, unused without SAM; "
                              f"write {head}+sam:... or drop them")
    return Variant(prefix + head.lower(), ham, overrides, sam=sam)


def parse_variants(items: Iterable[str]) -> List[Variant]:
    r"""Parse variant strings; each item may hold several variants separated by spaces
    (``"adamw adamw+ham"``). Duplicates are an error."""
    out: List[Variant] = []
    for item in items:
        for text in str(item).split():
            variant = parse_variant(text)
            if any(v.label == variant.label for v in out):
                raise ConfigError(f"variant {variant.label!r} is listed twice")
            if any(v.slug == variant.slug for v in out):
                raise ConfigError(f"variants {variant.label!r} and another one map to the same file name")
            out.append(variant)
    return out


def default_variants(cfg: ExperimentConfig) -> List[Variant]:
    """The config's optimizer without, then with HAM (HAM's alpha/beta from the config; SAM
    around both when the config sets it)."""
    from pyg_ham.optim import canonical_optimizer_name

    name = canonical_optimizer_name(cfg.optimizer)
    return [Variant(name, False, sam=cfg.sam), Variant(name, True, sam=cfg.sam)]


def load_variants_file(path: Union[str, Path]) -> List[str]:
    r"""Variant strings from a YAML file: a list, or a mapping with a ``variants`` list
    (as written by ``pyg-ham sweep`` in ``best.yaml``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"variants file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"variants file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if isinstance(data, dict):
        data = data.get("variants")
    if not isinstance(data, list) or not data or not all(isinstance(v, str) for v in data):
        raise ConfigError(f"variants file {path} must hold a list of variant strings "
                          f"(or a mapping with a 'variants' list), e.g. variants: [adam, adam+ham]")
    return data


def _without_ham_keys(variant: Variant) -> Dict[str, Any]:
    return {k: v for k, v in variant.overrides.items() if k not in HAM_KEYS}


def baseline_of(variants: Sequence[Variant]) -> Dict[str, Optional[str]]:
    r"""For each variant label, the label of the variant it is compared against.

    The first variant is the baseline of all others, except that a HAM variant is compared
    against its base optimizer's non-HAM variant when one is listed (with the same SAM switch;
    the one with the same non-HAM overrides if there is such, else the first), and a SAM
    variant without HAM against the base optimizer without SAM. The first variant maps to ``None``.
    """
    out: Dict[str, Optional[str]] = {}
    for i, v in enumerate(variants):
        if i == 0:
            out[v.label] = None
            continue
        base = variants[0].label
        if v.ham:
            plain = [w for w in variants if not w.ham and w.optimizer == v.optimizer and w.sam == v.sam]
            same = [w for w in plain if w.overrides == _without_ham_keys(v)]
            if same or plain:
                base = (same or plain)[0].label
        elif v.sam:  # SAM against its base optimizer without SAM
            plain = [w for w in variants if not w.ham and not w.sam and w.optimizer == v.optimizer]
            same = [w for w in plain if w.overrides == {k: x for k, x in v.overrides.items() if k not in SAM_KEYS}]
            if same or plain:
                base = (same or plain)[0].label
        out[v.label] = base
    return out


def variant_of_config(config: Dict[str, Any], reference: Optional[Dict[str, Any]] = None) -> str:
    r"""A variant-like label for a result's config: the optimizer, ``+ham`` and the settings
    that differ from :obj:`reference` (default: :class:`ExperimentConfig`'s defaults for
    lr/weight decay, and HAM's alpha/beta always when HAM is on)."""
    text = str(config.get("optimizer", "?")) + ("+sam" if config.get("sam") else "") + \
        ("+ham" if config.get("ham") else "")
    ref = reference if reference is not None else ExperimentConfig().to_dict()
    parts = []
    for key in ("lr", "weight_decay", "momentum", "scheduler", "sparsity", "sparsifier"):
        if key in config and config[key] != ref.get(key):
            if key == "momentum" and str(config.get("optimizer")).lower() != "sgd":
                continue
            parts.append(f"{key}={_format_value(config[key])}")
    if config.get("ham"):
        parts += [f"{k}={_format_value(config[k])}" for k in ("alpha", "beta") if k in config]
        if "max_exponent" in config and config["max_exponent"] != ref.get("max_exponent"):
            parts.append(f"max_exponent={_format_value(config['max_exponent'])}")
    if config.get("sam"):
        parts += [f"{k}={_format_value(config[k])}" for k in SAM_KEYS if k in config and config[k] != ref.get(k)]
    return text + (":" + ",".join(parts) if parts else "")
