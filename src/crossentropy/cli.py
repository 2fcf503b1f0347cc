"""The ``crossentropy`` command: a thin shell over the library.

Bad input becomes one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from . import __version__
from .core.information import cross_entropy, entropy, kl_divergence


class UsageError(Exception):
    """A command-line mistake, reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage over several lines; keep it to one
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _floats(text: str) -> np.ndarray:
    try:
        return np.array([float(v) for v in text.split(",")], dtype=np.float64)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.5,0.5, but got {text!r}") \
            from None


def _units(base) -> str:
    names = {None: "nats", 2.0: "bits", 10.0: "hartleys"}
    return names[base] if base in names else f"log-base-{base:g} units"


def cmd_info(args) -> int:
    kw = {"base": args.base, "normalize": args.normalize}
    h_p = float(entropy(args.p, **kw))
    h_pq = float(cross_entropy(args.p, args.q, **kw))
    kl = float(kl_divergence(args.p, args.q, **kw))
    unit = _units(args.base)
    if args.json:
        print(json.dumps({"entropy": h_p, "cross_entropy": h_pq, "kl_divergence": kl, "unit": unit,
                          "base": args.base}))
        return 0
    print(f"H(P)      = {h_p:.4f} {unit}")
    print(f"H(P, Q)   = {h_pq:.4f} {unit}")
    print(f"KL(P||Q)  = {kl:.4f} {unit}")
    print(f"identity  H(P, Q) = H(P) + KL(P||Q):  {h_pq:.4f} = {h_p:.4f} + {kl:.4f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="crossentropy", description="Cross-entropy done right: train, evaluate, explain.")
    parser.add_argument("--version", action="version", version=f"crossentropy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    info = sub.add_parser("info", help="entropy, cross-entropy and KL divergence of two distributions",
                          description="Print H(P), H(P,Q) and KL(P||Q) and check H(P,Q) = H(P) + KL(P||Q).")
    info.add_argument("--p", type=_floats, required=True, help="true distribution, e.g. 1,0,0,0")
    info.add_argument("--q", type=_floats, required=True, help="predicted distribution, e.g. 0.7,0.1,0.1,0.1")
    info.add_argument("--base", type=float, default=None, help="log base: 2 for bits (default: e, nats)")
    info.add_argument("--normalize", action="store_true", help="rescale P and Q to sum to 1")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (UsageError, ValueError, TypeError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"crossentropy: error: {message}" if not message.startswith("crossentropy") else message,
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
