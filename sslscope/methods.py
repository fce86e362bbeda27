"""What a method is: one record per objective, holding its loss and how the loop wires it.

A :class:`Method` says everything the rest of the code needs to know about an objective: its
loss (a pure function, the paper's defaults in its signature), the split of that loss into
weighted terms, an optional module that holds its state or learnable parameters, which pieces
of model it needs (a predictor, an EMA target, one encoder per modality), how its inputs are
picked from the networks' outputs, and the declared shape of every input. Each family's file in
``sslscope/losses/`` ends with a list ``METHODS`` of its records, and
:data:`sslscope.losses.METHODS` collects them; nothing else lists methods.

Declared shapes (``Method.args``) map each positional parameter of the loss, in order, to a
string of dimension symbols — ``N`` batch, ``K`` views per sample, ``D`` embedding width — with
an optional leading role word:

    "N D"          a batch of embeddings (the default role "batch": gathered across processes,
                   differentiated)
    "N K D"        a batch of stacked views
    "state D D"    running state the method's module passes in (no gradient)
    "parameter"    a learnable 0-d tensor the method's module passes in
    "*more": "N D" a parameter written ``*more`` in the signature: any number of further inputs

Tests and benchmarks build inputs from these declarations (:func:`example_inputs`), so a new
objective is tested on the inputs it really takes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from sslscope.errors import UserError


@dataclass(frozen=True)
class Outputs:
    """What the networks produced for one batch.

    Attributes:
        z: online projector outputs, one (N, D) tensor per view (or per modality).
        p: predictor outputs p = q(z), one per view, or None.
        t: target-network projector outputs (no gradient), one per view, or None.
    """

    z: list[Tensor]
    p: list[Tensor] | None = None
    t: list[Tensor] | None = None


def all_views(out: Outputs) -> tuple[Tensor, ...]:
    """(z_1, …, z_V): the two-view losses and multi-positive NT-Xent."""
    return tuple(out.z)


def stacked_views(out: Outputs) -> tuple[Tensor, ...]:
    """(z,) with z of shape (N, V, D): MMCR's view matrices."""
    return (torch.stack(out.z, dim=1),)


def stacked_online_and_target(out: Outputs) -> tuple[Tensor, ...]:
    """(z_online, z_target), each (N, V, D): momentum MMCR."""
    assert out.t is not None
    return torch.stack(out.z, dim=1), torch.stack(out.t, dim=1)


def predictions_and_targets(out: Outputs) -> tuple[Tensor, ...]:
    """(p_a, p_b, t_a, t_b): BYOL regresses each view's prediction on the other's target."""
    assert out.p is not None and out.t is not None
    return out.p[0], out.p[1], out.t[0], out.t[1]


def predictions_and_embeddings(out: Outputs) -> tuple[Tensor, ...]:
    """(p_a, p_b, z_a, z_b): SimSiam, whose target is the online network itself."""
    assert out.p is not None
    return out.p[0], out.p[1], out.z[0], out.z[1]


ROLES = ("batch", "state", "parameter")
DRY_RUN_BATCH = 256  # the most samples Method.problem calls a loss on (cheap at D = 8)
SYMBOLS = ("N", "K", "D")


@dataclass(frozen=True)
class Arg:
    """One positional input of a loss, parsed from its declaration in ``Method.args``.

    Attributes:
        name: the loss's parameter name (without the ``*`` of a variadic one).
        dims: dimension symbols, e.g. ("N", "K", "D"); () for a 0-d tensor.
        role: "batch", "state" or "parameter" (see the module docstring).
        repeated: the parameter is ``*name``: zero or more further inputs of this shape.
    """

    name: str
    dims: tuple[str, ...]
    role: str = "batch"
    repeated: bool = False


def parse_args(args: Mapping[str, str]) -> tuple[Arg, ...]:
    """Parse ``Method.args`` declarations; a malformed one is a ValueError naming it."""
    parsed = []
    for key, declaration in args.items():
        words = declaration.split()
        role = words.pop(0) if words and words[0] in ROLES else "batch"
        if any(w not in SYMBOLS for w in words) or (role == "batch") != (words[:1] == ["N"]):
            raise ValueError(f"input '{key}': bad shape '{declaration}'; a batch starts with N, "
                             f"state and parameters do not, and the symbols are {SYMBOLS}")
        parsed.append(Arg(key.lstrip("*"), tuple(words), role, key.startswith("*")))
    return tuple(parsed)


@dataclass(frozen=True)
class Method:
    """How one objective is computed and wired.

    Attributes:
        name: the registry key and ``--method`` value.
        description: one line for ``--help``.
        loss: pure function returning the scalar loss (or ``(loss, new_state)`` for a step of a
            loss with running state); hyper-parameters keyword-only, defaults in the signature.
        terms: same inputs, every keyword argument required; returns the weighted terms, a dict
            of scalars that sum to the loss. The loop minimises that sum and logs the terms
            (state losses return ``(terms, new_state)``).
        args: declared shape of each positional input of ``loss``, in order (module docstring).
        inputs: picks the batch inputs, in order, from the networks' :class:`Outputs`.
        module: ``module(dim, **kwargs)`` builds the ``nn.Module`` that holds the method's state
            in registered buffers or its learnable parameters; it has ``terms(*batch_inputs)``
            and, if needed, ``after_optimizer_step()``. None for a pure loss.
        views: the number of views the method takes; None for any number ≥ 2.
        predictor: an MLP q maps z to p (BYOL, SimSiam).
        target: "ema" adds a target network, an exponential moving average of the online one.
        ema_schedule: "cosine" raises the EMA decay from its base to 1 (BYOL); "constant"
            keeps it (the official momentum-MMCR code).
        cross_modal: one encoder per modality (CLIP, multimodal MMCR); each image gives one
            augmented view, split into two modalities (:func:`sslscope.models.split_modalities`).
        projector_last_bn: the projector ends in BatchNorm1d(affine=False) with no bias before
            it (SimSiam: facebookresearch/simsiam, simsiam/builder.py, "output layer").
        validate_options: checks the complete keyword arguments and returns one sentence on
            what is wrong with them (a combination the loss cannot compute), or None; run by
            :meth:`resolve`, so a bad value stops the run before it starts.
        flags: command-line flags of its own, flag → keyword argument (``{"--debias":
            "debias"}``): the same as ``--loss debias=...``, listed in ``sslscope train
            --help``.
    """

    name: str
    description: str
    loss: Callable[..., Any]
    terms: Callable[..., Any]
    args: Mapping[str, str] = field(default_factory=lambda: {"z_a": "N D", "z_b": "N D"})
    inputs: Callable[[Outputs], tuple[Tensor, ...]] = all_views
    module: Callable[..., nn.Module] | None = None
    views: int | None = 2
    predictor: bool = False
    target: str = "none"
    ema_schedule: str = "cosine"
    cross_modal: bool = False
    projector_last_bn: bool = False
    validate_options: Callable[[Mapping[str, Any]], str | None] | None = None
    flags: Mapping[str, str] = field(default_factory=dict)

    @property
    def arguments(self) -> tuple[Arg, ...]:
        """The parsed :attr:`args`."""
        return parse_args(self.args)

    def check(self) -> Method:
        """Raise a ValueError unless the record is consistent with its loss's signature."""
        declared = [("*" if a.repeated else "") + a.name for a in self.arguments]
        params = inspect.signature(self.loss).parameters.values()
        positional = [("*" if p.kind is p.VAR_POSITIONAL else "") + p.name for p in params
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
        if declared != positional:
            raise ValueError(f"method '{self.name}': args declares {declared}, but the loss "
                             f"takes {positional}")
        held = [a.name for a in self.arguments if a.role != "batch"]
        if held and self.module is None:
            raise ValueError(f"method '{self.name}': inputs {held} need a module to hold them")
        if self.target not in ("none", "ema") or self.ema_schedule not in ("cosine", "constant"):
            raise ValueError(f"method '{self.name}': target must be none or ema, ema_schedule "
                             "cosine or constant")
        return self

    def defaults(self) -> dict[str, Any]:
        """Keyword-only hyper-parameters of the loss (or of its module) and their defaults."""
        found = _keyword_only(self.loss)
        if self.module is not None and not found:
            found = _keyword_only(self.module)  # a learnable loss: options on the module (CLIP τ₀)
        return found

    def resolve(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The defaults updated with ``overrides``; unknown keys or wrong types are a UserError."""
        kwargs = self.defaults()
        for key, value in overrides.items():
            if key not in kwargs:
                known = ", ".join(sorted(kwargs)) or "none"
                raise UserError(f"loss '{self.name}' has no option '{key}'; its options are: "
                                f"{known}")
            default = kwargs[key]
            if isinstance(default, float) and type(value) is int:
                value = float(value)
            if default is not None and type(value) is not type(default):
                raise UserError(
                    f"loss option '{key}' must be a {type(default).__name__}, got {value!r}"
                )
            kwargs[key] = value
        problem = self.validate_options(kwargs) if self.validate_options else None
        if problem:
            raise UserError(f"--method {self.name}: {problem}")
        return kwargs

    def problem(self, kwargs: Mapping[str, Any], *, batch: int, views: int) -> str | None:
        """The loss's own sentence on why it cannot run with ``kwargs``, or None.

        The objective is built and called once, without gradients, on a random batch of
        min(``batch``, :data:`DRY_RUN_BATCH`) samples (``views`` views, D = 8): a ValueError
        it raises (a temperature ≤ 0, a β outside [0, 1], more neighbours than points) becomes
        the sentence, before any data is loaded. The loss checks its arguments once, here
        and in the loop, so the two cannot disagree.
        """
        sizes = {"N": min(batch, DRY_RUN_BATCH), "K": views, "D": 8}
        extra = max(views - 2, 0)
        inputs = iter(example_inputs(self, sizes=sizes, extra_views=extra, dtype=torch.float32))
        batch_inputs = []  # the objective holds state and parameters itself: pass the batch
        for arg in self.arguments:
            for _ in range(extra if arg.repeated else 1):
                x = next(inputs).detach()
                if arg.role == "batch":
                    batch_inputs.append(x)
        try:
            with torch.no_grad():
                terms, _ = self.objective(kwargs, sizes["D"])
                terms(*batch_inputs)
        except ValueError as e:
            return str(e)
        return None

    def objective(
        self, kwargs: Mapping[str, Any], dim: int
    ) -> tuple[Callable[..., dict[str, Tensor]], nn.Module | None]:
        """The callable the loop minimises (batch inputs → weighted terms), and its module.

        Args:
            kwargs: complete keyword arguments, from :meth:`resolve`.
            dim: embedding dimension D, to size a module's state.

        Returns:
            ``(terms_fn, module)``: ``module`` is None for a pure loss; otherwise it holds state
            or parameters that are checkpointed (and optimised, if it has parameters).
        """
        if self.module is not None:
            module = self.module(dim, **kwargs)
            return module.terms, module
        return partial(self.terms, **kwargs), None


def _keyword_only(fn: Callable[..., Any]) -> dict[str, Any]:
    params = inspect.signature(fn).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def example_inputs(
    method: Method,
    *,
    sizes: Mapping[str, int] | None = None,
    extra_views: int = 1,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
) -> list[Tensor]:
    """Seeded random inputs of the declared shapes, for tests and benchmarks of ``method.loss``.

    Batch inputs are standard normal and require grad; square state is a symmetric positive
    semi-definite A Aᵀ / D without grad (a running covariance); a parameter is the 0-d 1.3 with
    grad (any finite value is valid).

    Args:
        method: the record whose ``args`` give the shapes.
        sizes: values of the symbols; default N = 5, K = 3, D = 4.
        extra_views: how many inputs a repeated ``*name`` argument gets.
        dtype: of every tensor.
        seed: of the generator; inputs are drawn in declaration order.

    Returns:
        Positional inputs for ``method.loss``.
    """
    size = {"N": 5, "K": 3, "D": 4, **(sizes or {})}
    g = torch.Generator().manual_seed(seed)
    out = []
    for arg in method.arguments:
        shape = tuple(size[s] for s in arg.dims)
        for _ in range(extra_views if arg.repeated else 1):
            if arg.role == "state":
                a = torch.randn(shape, generator=g, dtype=dtype)
                out.append(a @ a.T / shape[-1] if len(shape) == 2 and shape[0] == shape[1] else a)
            elif arg.role == "parameter":
                out.append(torch.full(shape, 1.3, dtype=dtype, requires_grad=True))
            else:
                out.append(torch.randn(shape, generator=g, dtype=dtype).requires_grad_())
    return out
