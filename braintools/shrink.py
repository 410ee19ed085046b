"""Base of the wrappers that run a network on shrunk inputs (``models2d.Downsampled`` and its 3D twins).

On a CPU, a network that sees an image shrunk ``factor`` times trains many times faster; the wrappers shrink
the input by block means, run the inner network and upsample its logits to the input size, so the loss and
the metrics use full-size labels. Their ``state_dict`` is the inner model's, so a checkpoint saved through a
wrapper loads into the plain model, and the other way round.
"""

from __future__ import annotations

from torch import nn


class ShrunkInput(nn.Module):
    """Hold an inner ``model`` and a shrink ``factor``; save and load the inner model's ``state_dict`` only.

    Example:
        >>> ShrunkInput(nn.Conv2d(4, 4, 1), 2).state_dict().keys()
        odict_keys(['weight', 'bias'])
    """

    def __init__(self, model: nn.Module, factor: int = 2):
        super().__init__()
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        self.model, self.factor = model, int(factor)

    def state_dict(self, *args, **kwargs) -> dict:
        """The inner model's ``state_dict`` (no ``model.`` prefix)."""
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load an inner-model ``state_dict`` (e.g. from a checkpoint of the plain model)."""
        return self.model.load_state_dict(state_dict, strict=strict, assign=assign)
