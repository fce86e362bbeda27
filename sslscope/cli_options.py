"""The config options of ``sslscope train`` and ``sslscope sweep``.

One flag per config field, ``--loss KEY=VALUE``, and the flags a method declares for its own
options (``Method.flags``).

Every flag defaults to None, so "given on the command line" is ``is not None``; what is given
overrides the starting config (preset, ``--config`` file or the base config).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
from collections.abc import Sequence

from sslscope import config as config_lib
from sslscope.errors import UserError

METHOD_FLAG_PREFIX = "method_flag:"  # argparse dest of a method's own flag: prefix + flag


def flag(name: str) -> str:
    """``"batch_size"`` → ``"--batch-size"``."""
    return "--" + name.replace("_", "-")


def _method_flags() -> dict[str, tuple[str, str]]:
    """Every method's own flags: flag → (method name, loss keyword)."""
    from sslscope.losses import METHODS

    return {f: (name, key) for name, method in METHODS.items() for f, key in method.flags.items()}


def add_config_options(p: argparse.ArgumentParser) -> None:
    """One ``--flag`` per config field, and ``--loss KEY=VALUE`` (train, sweep)."""
    opts = p.add_argument_group("config options (defaults shown are the base config's)")
    base = config_lib.Config()
    for f in dataclasses.fields(config_lib.Config):
        if f.name == "loss_kwargs":
            opts.add_argument("--loss", action="append", metavar="KEY=VALUE", dest="loss_kwargs",
                              help="override a keyword argument of the loss, e.g. "
                              "--loss inv_weight=10 (repeatable)")
            continue
        default = getattr(base, f.name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        opts.add_argument(flag(f.name), dest=f.name, metavar=f.name.split("_")[-1].upper(),
                          help=f"{f.metadata['help']} (default: {shown})")
    from sslscope.losses import METHODS

    own = p.add_argument_group("options of one method (the same as --loss KEY=VALUE)")
    for name_flag, (method, key) in _method_flags().items():
        default = METHODS[method].defaults()[key]
        own.add_argument(name_flag, dest=METHOD_FLAG_PREFIX + name_flag, metavar="VALUE",
                         help=f"--loss {key}=VALUE of --method {method} (default: {default})")


def parse_loss_kwargs(items: Sequence[str]) -> dict:
    """``["temperature=0.2", "p=augmentation"]`` → ``{"temperature": 0.2, "p": "augmentation"}``.

    A value is a Python literal when it parses as one, else the text itself.
    """
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"--loss expects KEY=VALUE, got '{item}'")
        try:
            out[key.strip()] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = raw.strip()
    return out




def command_line_loss_kwargs(args: argparse.Namespace, method: str | None = None) -> dict:
    """The loss keyword arguments given on the command line: a method's flags, then --loss.

    Args:
        method: the run's method; a flag of another method is then a UserError.
    """
    out = {}
    for name_flag, (owner, key) in _method_flags().items():
        value = getattr(args, METHOD_FLAG_PREFIX + name_flag, None)
        if value is None:
            continue
        if method is not None and method != owner:
            raise UserError(f"{name_flag} is an option of --method {owner}, not of {method}")
        out.update(parse_loss_kwargs([f"{key}={value}"]))
    return {**out, **parse_loss_kwargs(args.loss_kwargs or [])}


def given_options(args: argparse.Namespace, cfg: config_lib.Config) -> dict:
    """The config options given on the command line; ``--loss`` ones merged into cfg's."""
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_lib.Config)
                 if f.name != "loss_kwargs" and getattr(args, f.name) is not None}
    given = command_line_loss_kwargs(args, overrides.get("method", cfg.method))
    if given:
        overrides["loss_kwargs"] = {**cfg.loss_kwargs, **given}
    return overrides
