r"""``ExperimentConfig``: one experiment, from YAML, CLI flags or Python, validated eagerly.

It sits one layer above the optimizer core (it checks optimizer names against
:func:`~pyg_ham.optim.optimizer_class` and takes HAM's defaults from
:data:`~pyg_ham.optim.HAM_DEFAULTS`) and below ``datasets`` and ``train``, which both import it.
``pyg_ham.train.config`` re-exports it."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import yaml

from pyg_ham.errors import ConfigError
from pyg_ham.optim.ham import HAM_DEFAULTS
from pyg_ham.validation import check_choice, check_number

__all__ = ["ExperimentConfig", "SECTIONS", "SCHEDULERS", "DEFAULT_FANOUT", "load_config", "resolve_device",
           "set_recipe_lookup"]

PROTOCOLS = ("default", "cv", "official", "gin")
EVAL_MODES = ("full", "layerwise", "sampled")
#: Where graph_placement / feature_placement put the graph and the features (pyg_ham.train.placement).
PLACEMENTS = ("auto", "device", "host", "disk")
#: Learning-rate schedules by name (stepped once per epoch; built by
#: :func:`pyg_ham.train.engine.build_scheduler`).
SCHEDULERS = ("none", "cosine", "step", "plateau")
#: Neighbours sampled per hop and layer when :attr:`ExperimentConfig.fanout` is unset.
DEFAULT_FANOUT = 10

#: ``dataset -> (recipe name, settings)`` or ``None`` (the dataset has no recipe), for
#: :meth:`ExperimentConfig.from_recipe`. :mod:`pyg_ham.datasets` sets it when it is imported: the
#: datasets import this module, not the other way round.
RecipeLookup = Callable[[str], Optional[Tuple[str, Dict[str, Any]]]]
_RECIPE_LOOKUP: List[RecipeLookup] = []


def set_recipe_lookup(lookup: RecipeLookup) -> None:
    r"""Set how :meth:`ExperimentConfig.from_recipe` finds a dataset's recipe (see :data:`RecipeLookup`)."""
    _RECIPE_LOOKUP[:] = [lookup]


def no_clamp_as_none(max_exponent: Any) -> Any:
    """HAM's exponent clamp with one spelling of "no clamp": ``inf`` becomes ``None``, so that the
    two compare equal when a run resumes and result JSON stays standard (no ``Infinity``)."""
    return None if isinstance(max_exponent, float) and max_exponent == math.inf else max_exponent


#: The fields of :class:`ExperimentConfig` by section, as GraphGym groups them. The config, its YAML
#: files and result JSONs stay flat (every config and result written so far loads unchanged).
SECTIONS: Dict[str, tuple] = {
    "data": ("dataset", "root", "dataset_options", "recipe", "on_disk", "graph_placement", "feature_placement"),
    "model": ("model", "hidden", "layers", "dropout", "norm", "jk", "heads", "pool", "virtual_node"),
    "optim": ("optimizer", "lr", "weight_decay", "momentum", "scheduler", "sam", "rho", "adaptive", "fused"),
    "ham": ("ham", "alpha", "beta", "max_exponent", "ham_embeddings"),
    "train": ("epochs", "runs", "seed", "eval_mode", "eval_every", "eval_train", "patience", "device",
              "protocol", "folds", "repeats", "sparsity", "sparsifier", "sync_bn", "jobs", "devices"),
    "sampling": ("batch_size", "fanout", "eval_fanout", "prefetch"),
    "output": ("out", "checkpoint_dir", "resume", "overwrite", "quiet"),
}


@dataclass
class ExperimentConfig:
    r"""Everything that defines a training experiment (node or graph task).

    ``None`` means "the task's default": e.g. :obj:`model` is ``gcn`` for node tasks and
    ``gin`` for graph tasks, :obj:`batch_size` is full-batch for node tasks and 32 graphs
    for graph tasks. See ``configs/`` for the published recipes.
    """

    # data
    dataset: str = "synthetic"
    root: Optional[str] = None
    dataset_options: Dict[str, Any] = field(default_factory=dict)
    #: node datasets: train from the dataset's on-disk layout (memory-mapped CSC and features,
    #: pyg_ham.datasets.ondisk) instead of the graph in memory; ogbn-papers100M always does
    on_disk: bool = False
    #: node datasets: where the graph and the features (with the labels) live while training:
    #: auto (by size against the device's free memory), device, host (pinned on CUDA) or disk
    #: (the on-disk layout); see pyg_ham.train.placement
    graph_placement: str = "auto"
    feature_placement: str = "auto"
    # model
    model: Optional[str] = None
    hidden: int = 64
    layers: int = 2
    dropout: float = 0.5
    norm: Optional[str] = "batch_norm"
    jk: Optional[str] = None
    heads: int = 1
    pool: str = "mean"
    virtual_node: bool = False
    # optimizer
    optimizer: str = "adam"
    lr: float = 0.01
    weight_decay: float = 0.0
    momentum: float = 0.9
    ham: bool = True
    alpha: float = HAM_DEFAULTS["ham_alpha"]
    beta: float = HAM_DEFAULTS["ham_beta"]
    max_exponent: Optional[float] = HAM_DEFAULTS["ham_max_exponent"]
    # HAM on the learnable embedding tables of featureless node types (heterogeneous graphs)
    ham_embeddings: bool = True
    scheduler: str = "none"
    # sharpness-aware minimization around the base (pyg_ham.optim.sam): radius, ASAM's scaling
    sam: bool = False
    rho: float = 0.05
    adaptive: bool = False
    # the base with fused=True, and HAM's step inside its pass (pyg_ham.optim.fused_base); None:
    # where the base (AdamW, Adam, SGD) and the device (CPU, CUDA) allow
    fused: Optional[bool] = None
    # training
    epochs: int = 100
    runs: int = 1
    seed: int = 0
    batch_size: Optional[int] = None
    fanout: Optional[List[int]] = None
    eval_fanout: Optional[List[int]] = None
    #: mini-batch training: gather the next batch and start moving it to the device while the
    #: current step runs (pyg_ham.sampling.Prefetcher; the same batches and results either way)
    prefetch: bool = True
    eval_mode: str = "full"
    eval_every: int = 1
    eval_train: bool = True
    patience: Optional[int] = None
    device: str = "auto"
    # graph-level protocol
    protocol: str = "default"
    folds: int = 10
    repeats: int = 1
    # sparse training
    sparsity: float = 0.0
    sparsifier: Optional[str] = None
    # several processes (torchrun): BatchNorm statistics over the global batch
    sync_bn: bool = True
    # independent runs in parallel (pyg_ham.train.jobs): worker processes, their CUDA devices
    jobs: int = 1
    devices: Optional[List[int]] = None
    # output
    out: Optional[str] = None
    checkpoint_dir: Optional[str] = None
    resume: bool = False
    overwrite: bool = False
    quiet: bool = False
    # provenance: the dataset recipe the settings started from (see from_recipe)
    recipe: Optional[str] = None

    @classmethod
    def from_recipe(cls, dataset: str, base: Optional["ExperimentConfig"] = None,
                    keep: Iterable[str] = (), **overrides: Any) -> "ExperimentConfig":
        r"""The config of :obj:`dataset`'s default recipe (see :mod:`pyg_ham.datasets.recipes`),
        with :obj:`overrides` on top; ``recipe`` records its name.

        Args:
            dataset (str): a registered dataset (its family's recipe; none for e.g. ``synthetic``).
            base (ExperimentConfig, optional): start from this config instead of the defaults;
                its fields named in :obj:`keep` win over the recipe (e.g. those a YAML file set).
            keep (iterable of str): see :obj:`base`.
            **overrides: fields to set last (``None`` values are ignored, as unset flags).
        """
        if not _RECIPE_LOOKUP:
            raise ConfigError("ExperimentConfig.from_recipe needs the dataset registry; import pyg_ham.datasets "
                              "(or use pyg_ham.train.config) first")
        base = base if base is not None else cls()
        found = _RECIPE_LOOKUP[0](dataset)
        if found is None:
            return base.replace(dataset=dataset, **overrides)
        recipe, settings = found
        values = {k: v for k, v in settings.items() if k not in set(keep)}
        return dataclasses.replace(base, **values, dataset=dataset, recipe=recipe).replace(**overrides)

    @classmethod
    def field_names(cls) -> List[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: Dict[str, Any], source: str = "config") -> "ExperimentConfig":
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(cls.field_names())}")
        return cls(**values)

    def replace(self, **overrides: Any) -> "ExperimentConfig":
        """A copy with :obj:`overrides` (``None`` values are ignored, as unset CLI flags; to set a
        field to ``None``, e.g. ``norm``, use :func:`dataclasses.replace`)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(values) - set(self.field_names()))
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(self.field_names())}")
        return dataclasses.replace(self, **values)

    def __post_init__(self) -> None:
        self.max_exponent = no_clamp_as_none(self.max_exponent)
        self.validate(device=False)

    def to_dict(self) -> Dict[str, Any]:
        """The flat dict of every field (what YAML files and result JSONs hold)."""
        return dataclasses.asdict(self)

    def sections(self) -> Dict[str, Dict[str, Any]]:
        """The settings grouped by :data:`SECTIONS` (``{"optim": {"lr": ..., ...}, ...}``)."""
        flat = self.to_dict()
        return {name: {k: flat[k] for k in keys} for name, keys in SECTIONS.items()}

    def validate(self, device: bool = True) -> "ExperimentConfig":
        """Check every value; raise :class:`~pyg_ham.errors.ConfigError` naming the bad one.

        Runs when a config is created (and copied); the device is checked only when asked
        (:obj:`device`), at run time, so a config naming ``cuda`` loads on a CPU machine."""

        def number(name: str, low: float, high: float = math.inf, **kwargs: Any) -> None:
            check_number(name, getattr(self, name), low, high, **kwargs)

        number("lr", 0, low_open=True)
        number("weight_decay", 0)
        number("momentum", 0, 1)
        number("alpha", 0)
        number("beta", 0)
        number("dropout", 0, 1)
        for name in ("epochs", "runs", "hidden", "layers", "heads", "eval_every", "repeats"):
            number(name, 1, integer=True)
        number("seed", 0, integer=True)
        number("sparsity", 0, 0.999999)
        number("max_exponent", 0, low_open=True, allow_none=True)
        number("batch_size", 1, integer=True, allow_none=True)
        number("patience", 1, integer=True, allow_none=True)
        number("folds", 2, integer=True)
        number("jobs", 1, integer=True)
        if self.devices is not None:
            if not self.devices or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                           for d in self.devices):
                raise ConfigError(f"devices must be CUDA device indices such as 0,1, got {self.devices}")
            if len(set(self.devices)) != len(self.devices):
                raise ConfigError(f"devices lists a device twice ({self.devices}); give each index once "
                                  f"(several jobs share the devices round robin)")
            if self.device not in ("auto", "cuda"):
                raise ConfigError(f"devices gives each job a CUDA device, but device is {self.device!r}; "
                                  f"drop --devices or use --device auto")
        check_choice("protocol", self.protocol, PROTOCOLS)
        check_choice("eval_mode", self.eval_mode, EVAL_MODES)
        check_choice("graph_placement", self.graph_placement, PLACEMENTS)
        check_choice("feature_placement", self.feature_placement, PLACEMENTS)
        number("rho", 0, low_open=True)
        for name in ("sam", "adaptive"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.fused is not None and not isinstance(self.fused, bool):
            raise ConfigError(f"fused must be true, false or null (where the base and device allow), "
                              f"got {self.fused!r}")
        if self.sam:
            from pyg_ham.optim.sam import _sam_class

            _sam_class()  # SAM needs pytorch-optimizer: say so before anything runs
        if not isinstance(self.ham_embeddings, bool):
            raise ConfigError(f"ham_embeddings must be true or false, got {self.ham_embeddings!r}")
        check_choice("scheduler", self.scheduler, SCHEDULERS)
        if self.fanout is not None:
            if not all(isinstance(k, int) and (k > 0 or k == -1) for k in self.fanout):
                raise ConfigError(f"fanout must be positive integers or -1 (all neighbours), got {self.fanout}")
            if len(self.fanout) != self.layers:
                example = ",".join([str(DEFAULT_FANOUT)] * self.layers)
                raise ConfigError(f"fanout has {len(self.fanout)} hops but the model has {self.layers} layers; "
                                  f"give one fanout per layer (e.g. --fanout {example})")
        if self.fanout is not None and self.batch_size is None:
            raise ConfigError("fanout has no effect in full-batch training (every neighbour is used); "
                              "set batch_size (--batch-size) to sample mini-batches, or drop fanout")
        if self.eval_fanout is not None:
            if not all(isinstance(k, int) and (k > 0 or k == -1) for k in self.eval_fanout):
                raise ConfigError(f"eval_fanout must be positive integers or -1 (all neighbours), "
                                  f"got {self.eval_fanout}")
            if len(self.eval_fanout) != self.layers:
                raise ConfigError(f"eval_fanout has {len(self.eval_fanout)} hops but the model has {self.layers} "
                                  f"layers; give one per layer (e.g. --eval-fanout {','.join(['-1'] * self.layers)})")
            if self.eval_mode != "sampled":
                raise ConfigError("eval_fanout is the fanout of sampled evaluation; set eval_mode sampled "
                                  "(--eval-mode sampled) or drop eval_fanout")
        if not isinstance(self.prefetch, bool):
            raise ConfigError(f"prefetch must be true or false, got {self.prefetch!r}")
        if not isinstance(self.on_disk, bool):
            raise ConfigError(f"on_disk must be true or false, got {self.on_disk!r}")
        if self.eval_mode == "sampled" and self.batch_size is None:
            raise ConfigError("eval_mode 'sampled' evaluates mini-batches with the training fanout; "
                              "set batch_size (--batch-size) and fanout, or use eval_mode full")
        if self.sparsity > 0 and not self.sparsifier:
            raise ConfigError("sparsity > 0 needs a sparsifier (--sparsifier random|erk|magnitude|gmp|acdc|rigl)")
        from pyg_ham.optim import optimizer_class

        optimizer_class(self.optimizer)
        if device:
            resolve_device(self.device)
            if self.devices:
                check_cuda_devices(self.devices)
        return self


def load_config(path: Union[str, Path]) -> ExperimentConfig:
    """Read a YAML experiment config (keys are :class:`ExperimentConfig` fields)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings, got {type(values).__name__}")
    values.pop("description", None)  # free text for people
    return ExperimentConfig.from_dict(values, source=str(path))


def check_cuda_devices(devices: List[int]) -> None:
    """Every index of :obj:`devices` names a CUDA device of this machine (one-line error otherwise)."""
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"devices {','.join(map(str, devices))} requested but CUDA is not available here; "
                          f"drop --devices (the jobs then share the CPU cores)")
    missing = [d for d in devices if d >= torch.cuda.device_count()]
    if missing:
        raise ConfigError(f"devices {','.join(map(str, missing))} do not exist (this machine has "
                          f"{torch.cuda.device_count()} GPU(s)); choose indices below that")


def resolve_device(name: str) -> "torch.device":  # noqa: F821
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; errors if absent."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available here; use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} does not exist (this machine has {torch.cuda.device_count()} GPU(s))")
    elif device.type != "cpu":
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    return device
