"""Freeze and unfreeze the pretrained encoder of an smp model, stage by stage, during transfer learning.

Encoder stages. An encoder returns one feature map per resolution (1/2, 1/4, ... 1/32 of the input);
stage k is the set of encoder parameters that feature map k depends on and no earlier one does.
``_find_encoder_stages`` finds them from autograd's graph of one small probe input: walking back from each
feature map through ``grad_fn.next_functions`` reaches exactly the parameters (the ``AccumulateGrad`` leaves)
it was computed from. This needs no knowledge of layer names, so it works alike for smp ResNets (stem conv1/bn1,
layer1, ... layer4), smp EfficientNets (stem + groups of MBConv blocks) and timm ``tu-`` encoders.
Parameters no feature map uses (smp EfficientNet keeps a classifier conv head it never calls) stay frozen.

Schedules (``EncoderFreezer(model, schedule=...)``; epochs count from 1):

- ``"three_phase"``: phase 1 (epochs before ``top_stages_epoch``) trains decoder + head only; phase 2 also
  trains the top (deepest) ``n_top_stages`` encoder stages at a lower learning rate; phase 3 (from
  ``all_stages_epoch``) trains everything with differential learning rates.
- ``"freeze_first_two"``, ``"freeze_first"``: the first two stages / the first stage stay frozen, the rest
  trains, every epoch.
- ``"none"``: nothing is frozen.

Learning rates are set once, in ``param_groups``: the decoder (+ head) trains at ``lr``; encoder stage k of
n at ``lr * encoder_lr_scale * stage_lr_decay ** (n - k)`` (deeper stages change more: their features are
the most ImageNet-specific). Freezing only switches ``requires_grad`` (a frozen parameter has no gradient, so
the optimizer skips it), so one optimizer serves every phase and schedulers scale every group alike.

Frozen BatchNorm layers keep their ImageNet running statistics: they are put in eval mode, and a forward
pre-hook puts them back in eval mode whenever ``model.train()`` switched them to training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

SCHEDULES = ("three_phase", "freeze_first_two", "freeze_first", "none")


@dataclass
class EncoderStages:
    """Encoder parameter names per stage (shallow to deep), and the unused ones."""

    stages: list[list[str]]
    unused: list[str]

    def stage_of(self) -> dict[str, int]:
        """Map each used parameter name to its stage number (1 = shallowest)."""
        return {name: number for number, names in enumerate(self.stages, start=1) for name in names}


def _graph_parameters(tensor: torch.Tensor) -> set[int]:
    """Return the ids of the leaf tensors (parameters) that autograd's graph of ``tensor`` reaches (notebook 04)."""
    found, seen, stack = set(), set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        leaf = getattr(node, "variable", None)  # AccumulateGrad nodes hold the parameter
        if leaf is not None:
            found.add(id(leaf))
        stack.extend(parent for parent, _ in node.next_functions)
    return found


def _find_encoder_stages(encoder: nn.Module, in_channels: int, probe_size: int = 64) -> EncoderStages:
    """Group an encoder's parameters into stages: those that feature map k needs and no earlier one does (notebook 04).

    Args:
        encoder: an smp encoder (``model.encoder``): returns a list of feature maps, finest first.
        in_channels: channels of the probe input.
        probe_size: height and width of the probe input (a multiple of 32 for 5-stage encoders).
    """
    parameters = dict(encoder.named_parameters())
    flags = {name: parameter.requires_grad for name, parameter in parameters.items()}
    was_training = encoder.training
    first = next(iter(parameters.values()))
    try:
        encoder.eval()  # no running-statistics update from the probe
        for parameter in parameters.values():
            parameter.requires_grad_(True)
        probe = torch.zeros(1, in_channels, probe_size, probe_size, device=first.device, dtype=first.dtype)
        with torch.enable_grad():
            features = encoder(probe)
        stages, seen = [], set()
        for feature in features:  # the input itself and empty placeholders have no graph
            reached = _graph_parameters(feature)
            names = [name for name, parameter in parameters.items() if id(parameter) in reached and name not in seen]
            if names:
                stages.append(names)
                seen.update(names)
    finally:
        encoder.train(was_training)
        for name, parameter in parameters.items():
            parameter.requires_grad_(flags[name])
    return EncoderStages(stages, [name for name in parameters if name not in seen])


class EncoderFreezer:
    """Freeze / unfreeze encoder stages of an smp model per epoch, and build matching optimizer groups.

    Args:
        model: smp model with ``model.encoder`` (everything else counts as decoder + head).
        schedule: one of ``SCHEDULES``.
        top_stages_epoch: first epoch of phase 2 (three_phase).
        all_stages_epoch: first epoch of phase 3 (three_phase).
        n_top_stages: encoder stages unfrozen in phase 2, counted from the deepest.
        encoder_lr_scale: learning rate of the deepest encoder stage relative to the decoder's.
        stage_lr_decay: learning-rate ratio between an encoder stage and the next deeper one.
        in_channels: input channels of the probe used to find the stages.

    Example:
        >>> freezer = EncoderFreezer(model, "three_phase", top_stages_epoch=3, all_stages_epoch=5)  # doctest: +SKIP
        >>> optimizer = torch.optim.AdamW(freezer.param_groups(lr=1e-3))  # doctest: +SKIP
        >>> freezer.on_epoch_start(1)  # doctest: +SKIP
        'phase 1: decoder + head'
    """

    def __init__(self, model: nn.Module, schedule: str = "three_phase", top_stages_epoch: int = 3,
                 all_stages_epoch: int = 5, n_top_stages: int = 2, encoder_lr_scale: float = 0.1,
                 stage_lr_decay: float = 0.5, in_channels: int = 4):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        if not 1 <= top_stages_epoch <= all_stages_epoch:
            raise ValueError(f"need 1 <= top_stages_epoch <= all_stages_epoch, got {top_stages_epoch}, "
                             f"{all_stages_epoch}")
        self.model, self.schedule = model, schedule
        self.top_stages_epoch, self.all_stages_epoch = top_stages_epoch, all_stages_epoch
        self.encoder_lr_scale, self.stage_lr_decay = encoder_lr_scale, stage_lr_decay
        found = _find_encoder_stages(model.encoder, in_channels)
        encoder_parameters = dict(model.encoder.named_parameters())
        self.stages = [[encoder_parameters[name] for name in names] for names in found.stages]
        self.stage_names = found.stages
        self.unused = [encoder_parameters[name] for name in found.unused]
        self.n_top_stages = min(n_top_stages, len(self.stages))
        encoder_ids = {id(parameter) for parameter in model.encoder.parameters()}
        self.decoder = [parameter for parameter in model.parameters() if id(parameter) not in encoder_ids]
        self._stage_batchnorms = self._batchnorms_per_stage(found)
        self._hooks: list = []
        self.current_phase: str | None = None

    def _batchnorms_per_stage(self, found: EncoderStages) -> list[list[_BatchNorm]]:
        """BatchNorm modules of each stage (a module belongs to the stage of its weight)."""
        stage_of = found.stage_of()
        per_stage: list[list[_BatchNorm]] = [[] for _ in self.stages]
        for name, module in self.model.encoder.named_modules():
            if isinstance(module, _BatchNorm) and module.weight is not None:
                stage = stage_of.get(f"{name}.weight" if name else "weight")
                if stage is not None:
                    per_stage[stage - 1].append(module)
        return per_stage

    @property
    def n_stages(self) -> int:
        """Number of encoder stages found."""
        return len(self.stages)

    def stage_lr(self, stage: int, lr: float) -> float:
        """Learning rate of encoder stage ``stage`` (1 = shallowest) when the decoder trains at ``lr``."""
        return lr * self.encoder_lr_scale * self.stage_lr_decay ** (self.n_stages - stage)

    def param_groups(self, lr: float, weight_decay: float = 0.0) -> list[dict]:
        """Optimizer parameter groups: ``decoder`` at ``lr``, then ``encoder stage k`` at ``stage_lr(k, lr)``."""
        groups = [{"name": "decoder", "params": self.decoder, "lr": lr, "weight_decay": weight_decay}]
        for stage, parameters in enumerate(self.stages, start=1):
            groups.append({"name": f"encoder stage {stage}", "params": parameters, "lr": self.stage_lr(stage, lr),
                           "weight_decay": weight_decay})
        return groups

    def trainable_stages(self, epoch: int) -> list[int]:
        """Encoder stages (1 = shallowest) that train in ``epoch`` (counting from 1)."""
        everything = list(range(1, self.n_stages + 1))
        if self.schedule == "none":
            return everything
        if self.schedule == "freeze_first":
            return everything[1:]
        if self.schedule == "freeze_first_two":
            return everything[2:]
        if epoch < self.top_stages_epoch:
            return []
        if epoch < self.all_stages_epoch:
            return everything[self.n_stages - self.n_top_stages:]
        return everything

    def phase(self, epoch: int) -> str:
        """Describe what trains in ``epoch``, e.g. ``"phase 2: decoder + head + encoder stages 4-5"``."""
        stages = self.trainable_stages(epoch)
        if self.schedule != "three_phase":
            frozen = [stage for stage in range(1, self.n_stages + 1) if stage not in stages]
            return f"fixed: encoder {_stages_text(frozen)} frozen" if frozen else "fixed: nothing frozen"
        if not stages:
            return "phase 1: decoder + head"
        if len(stages) < self.n_stages:
            return f"phase 2: decoder + head + encoder {_stages_text(stages)}"
        return "phase 3: everything (differential learning rates)"

    def on_epoch_start(self, epoch: int) -> str:
        """Apply the freezing of ``epoch`` (after ``model.train()``) and return its ``phase`` description."""
        trainable = set(self.trainable_stages(epoch))
        for stage, parameters in enumerate(self.stages, start=1):
            for parameter in parameters:
                _set_trainable(parameter, stage in trainable)
        for parameter in self.unused:
            _set_trainable(parameter, False)
        for parameter in self.decoder:
            _set_trainable(parameter, True)
        self._freeze_batchnorms([bn for stage, bns in enumerate(self._stage_batchnorms, 1)
                                 if stage not in trainable for bn in bns])
        self.current_phase = self.phase(epoch)
        return self.current_phase

    def _freeze_batchnorms(self, frozen: list[_BatchNorm]) -> None:
        """Put ``frozen`` BatchNorms in eval mode and keep them there; release the others."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        frozen_ids = {id(module) for module in frozen}
        for bns in self._stage_batchnorms:
            for module in bns:
                if id(module) in frozen_ids:
                    module.eval()
                    self._hooks.append(module.register_forward_pre_hook(_keep_eval))
                else:
                    module.train(self.model.training)

    def frozen_batchnorms(self) -> list[_BatchNorm]:
        """BatchNorm modules currently frozen (their running statistics do not change)."""
        return [module for bns in self._stage_batchnorms for module in bns if not module.weight.requires_grad]


def _keep_eval(module: nn.Module, inputs: tuple) -> None:
    """Forward pre-hook: a frozen BatchNorm runs in eval mode even after ``model.train()``."""
    module.training = False


def freeze_batchnorm_statistics(model: nn.Module) -> int:
    """Make every BatchNorm of ``model`` use its stored statistics, also in training; return how many (notebook 06).

    Fine-tuning an inflated network on one or two 3D patches per batch would replace the running
    statistics learnt in 2D by noisy estimates from a few voxels. Their affine parameters still train.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.eval()
            module.register_forward_pre_hook(_keep_eval)
            count += 1
    return count


def _set_trainable(parameter: nn.Parameter, trainable: bool) -> None:
    parameter.requires_grad_(trainable)
    if not trainable:
        parameter.grad = None  # no stale gradient, so the optimizer skips the parameter


def _stages_text(stages: list[int]) -> str:
    """``[4, 5]`` -> ``"stages 4-5"``, ``[1]`` -> ``"stage 1"``."""
    return f"stage {stages[0]}" if len(stages) == 1 else f"stages {stages[0]}-{stages[-1]}"
