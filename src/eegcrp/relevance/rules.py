"""LRP rules, composites and canonizers for EEGNet, built from zennit's.

Composites by name (:func:`build_composite`): ``EpsilonAlpha2Beta1`` (the thesis; alpha=2,
beta=1 on every conv, epsilon on the classifier), ``EpsilonPlus``, ``EpsilonPlusFlat`` and
``EpsilonGammaBox``; ``Epsilon`` (epsilon everywhere) is kept as a reference for checks.
Average pools use zennit's ``Norm`` and ELUs ``Pass``; batch norms and dropout get no rule;
the first conv's rule can be replaced (``first_layer_rule``). A Flat first layer shifted the
spectral relevance peak of a 10 Hz effect to low frequencies in the thesis data, so no default
uses one except ``EpsilonPlusFlat``, which is defined by it.

Batch norms and biases
----------------------
Batch norms are merged into the preceding convs by :class:`ExactMergeBatchNorm`, zennit's
``SequentialMergeBatchNorm`` that in addition leaves an *exact* identity behind (zennit's
leaves ``1/sqrt(1 + eps)``). The merged convs then carry biases (the batch-norm shifts), and
rules that include biases in their denominators let relevance leak there. zennit 0.4.6 has
no ``zero_params`` option, so ``zero_bias=True`` (the default) wraps every rule so that its
modified forward passes use a zero bias (:func:`without_bias`); the model's own forward pass
and the logit keep the biases. The fold store records the conservation each fold reached
(``conservation_upper``: logit -> concept layer, ``conservation_lower``: layer -> input).

Conservation is not guaranteed by the rules themselves: the alpha-beta rule (and z-plus)
only conserves relevance at neurons that receive contributions of both signs (z-plus: some
positive one); a neuron whose inputs all push one way passes on 2x (or -1x) its relevance.
In EEGNet this happens in the depthwise spatial conv when there are few channels (each neuron
sees one tap per channel: with 3 channels, as in BCI IV 2b, about a quarter of the neurons)
and at the edges of the depthwise temporal conv of block 2. With biases left out, the bias-free
part of a neuron's input can be near zero while its relevance is not, which magnifies the
stabilisers' share there. Measured input/layer ratios therefore spread around 1 on trained
models (they are reported per fold, never assumed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import MissingDependencyError

try:
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.core import BasicHook, Composite, Hook, stabilize
    from zennit.rules import AlphaBeta, Epsilon, Flat, Gamma, Norm, Pass, WSquare, ZBox, ZPlus
    from zennit.types import Activation, AvgPool, Convolution
except ImportError as exc:  # pyproject cannot declare zennit: see constraints.txt
    raise MissingDependencyError(
        "explanations need zennit 0.4.6, which `pip install eegcrp` does not install (it "
        "declares torchvision, which it never imports and whose builds for this torch fail "
        "to import): run `pip install --no-deps zennit==0.4.6` (make demo and make test "
        "do this)") from exc

__all__ = [
    "COMPOSITES",
    "RULES",
    "ExactMergeBatchNorm",
    "build_composite",
    "make_rule",
    "without_bias",
]

#: Composite name -> (rule of the convs, rule of the first conv or None = the conv rule).
COMPOSITES: dict[str, tuple[str, str | None]] = {
    "EpsilonAlpha2Beta1": ("alpha2beta1", None),
    "EpsilonPlus": ("zplus", None),
    "EpsilonPlusFlat": ("zplus", "flat"),
    "EpsilonGammaBox": ("gamma", "zbox"),
    # Not offered in the config: epsilon everywhere, a reference for conservation checks.
    "Epsilon": ("epsilon", None),
}

#: Rule names accepted by :func:`make_rule` and ``first_layer_rule``.
RULES = ("epsilon", "zplus", "alpha2beta1", "gamma", "flat", "wsquare", "zbox")


def without_bias(rule: Hook) -> Hook:
    """The same zennit rule with the bias set to zero in its modified forward passes.

    zennit 0.4.6 rules have no ``zero_params`` argument; this rebuilds a
    :class:`~zennit.core.BasicHook` whose parameter modifiers return zeros for ``bias`` and
    are unchanged otherwise. Rules without parameters (``Norm``) and plain hooks (``Pass``)
    are returned as they are.
    """
    if not isinstance(rule, BasicHook) or rule.param_keys == []:
        return rule

    def zero_bias(modifier: Any) -> Any:
        def modify(param: torch.Tensor, name: str) -> torch.Tensor:
            if name == "bias":
                return torch.zeros_like(param)
            return modifier(param, name)

        return modify

    return BasicHook(
        input_modifiers=rule.input_modifiers,
        param_modifiers=[zero_bias(m) for m in rule.param_modifiers],
        output_modifiers=rule.output_modifiers,
        gradient_mapper=rule.gradient_mapper,
        reducer=rule.reducer,
        param_keys=rule.param_keys,
        require_params=rule.require_params,
    )


def make_rule(
    name: str,
    zero_bias: bool = True,
    input_bounds: tuple[float, float] | None = None,
    epsilon: float = 1e-6,
    gamma: float = 0.25,
) -> Hook:
    """A zennit rule by name (see :data:`RULES`), optionally without biases.

    ``zbox`` needs ``input_bounds`` (lowest and highest input value).
    """
    if name == "epsilon":
        rule: Hook = Epsilon(epsilon=epsilon)
    elif name == "zplus":
        rule = ZPlus()
    elif name == "alpha2beta1":
        rule = AlphaBeta(alpha=2.0, beta=1.0)
    elif name == "gamma":
        rule = Gamma(gamma=gamma)
    elif name == "flat":
        rule = Flat()
    elif name == "wsquare":
        rule = WSquare()
    elif name == "zbox":
        if input_bounds is None:
            raise ValueError("the zbox rule needs input_bounds=(low, high) of the input")
        rule = ZBox(low=float(input_bounds[0]), high=float(input_bounds[1]))
    else:
        raise ValueError(f"unknown rule {name!r}; use one of {list(RULES)}")
    return without_bias(rule) if zero_bias else rule


def _norm_rule(epsilon: float = 1e-6) -> Hook:
    """zennit's ``Norm`` (average pools) with the stabiliser ``epsilon`` (zennit: 1e-6)."""
    if epsilon == 1e-6:
        return Norm()
    return BasicHook(
        input_modifiers=[lambda input: input],
        param_modifiers=[None],
        output_modifiers=[lambda output: output],
        gradient_mapper=lambda out_grad, outputs: out_grad / stabilize(outputs[0], epsilon),
        reducer=lambda inputs, gradients: inputs[0] * gradients[0],
        param_keys=[],
    )


class ExactMergeBatchNorm(SequentialMergeBatchNorm):
    """zennit's ``SequentialMergeBatchNorm`` leaving an exact identity batch norm behind.

    zennit sets the merged batch norm's running variance to 1, so it still divides by
    ``sqrt(1 + eps)``; here the variance becomes ``1 - eps``. Reverted on removal.
    """

    @staticmethod
    def merge_batch_norm(modules: Sequence[nn.Module], batch_norm: nn.Module) -> None:
        SequentialMergeBatchNorm.merge_batch_norm(modules, batch_norm)
        batch_norm.running_var.data = torch.full_like(
            batch_norm.running_var.data, 1.0 - batch_norm.eps
        )


class _EEGComposite(Composite):
    """Composite mapping rules by module type, with a separate rule for the first conv."""

    def __init__(self, conv_rule: Hook, first_rule: Hook | None, linear_rule: Hook,
                 canonizers: list[Any], epsilon: float = 1e-6) -> None:
        self.conv_rule = conv_rule
        self.first_rule = first_rule
        self.linear_rule = linear_rule
        self.norm_rule = _norm_rule(epsilon)
        self.pass_rule = Pass()
        super().__init__(self._map, canonizers)

    def _map(self, ctx: dict, name: str, module: nn.Module) -> Hook | None:
        if isinstance(module, (Convolution, nn.Linear)) and not ctx.get("first_seen"):
            ctx["first_seen"] = True
            if self.first_rule is not None:
                return self.first_rule
        if isinstance(module, Convolution):
            return self.conv_rule
        if isinstance(module, nn.Linear):
            return self.linear_rule
        if isinstance(module, AvgPool):
            return self.norm_rule
        if isinstance(module, Activation):
            return self.pass_rule
        return None


def build_composite(
    name: str = "EpsilonAlpha2Beta1",
    first_layer_rule: str | None = None,
    zero_bias: bool = True,
    input_bounds: tuple[float, float] | None = None,
    merge_batch_norm: bool = True,
    epsilon: float = 1e-6,
) -> Composite:
    """A zennit composite by name (see :data:`COMPOSITES`) for EEGNet.

    Parameters
    ----------
    name : str
        ``EpsilonAlpha2Beta1`` | ``EpsilonPlus`` | ``EpsilonPlusFlat`` | ``EpsilonGammaBox``.
    first_layer_rule : str | None
        Rule of the first conv (one of :data:`RULES`); None = the composite's own.
    zero_bias : bool
        Biases left out of every rule (see the module docstring).
    input_bounds : (float, float) | None
        Lowest and highest input value, for the ``zbox`` rule.
    merge_batch_norm : bool
        Merge batch norms into the preceding convs (:class:`ExactMergeBatchNorm`).
    epsilon : float
        Stabiliser of the epsilon rule and of the average pools' Norm rule (zennit's
        default 1e-6; the other rules keep zennit's fixed 1e-6).
    """
    if name not in COMPOSITES:
        raise ValueError(f"unknown composite {name!r}; use one of {list(COMPOSITES)}")
    conv, first = COMPOSITES[name]
    first = first_layer_rule or first
    kwargs = {"zero_bias": zero_bias, "input_bounds": input_bounds, "epsilon": epsilon}
    return _EEGComposite(
        conv_rule=make_rule(conv, **kwargs),
        first_rule=make_rule(first, **kwargs) if first else None,
        linear_rule=make_rule("epsilon", **kwargs),
        canonizers=[ExactMergeBatchNorm()] if merge_batch_norm else [],
        epsilon=epsilon,
    )
