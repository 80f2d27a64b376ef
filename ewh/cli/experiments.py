"""`ewh experiments`: check experiments/*.yml and show who gets which variant."""

from __future__ import annotations

import argparse
from pathlib import Path

from ewh.cli.main import Handler, OperationalError, command


@command("experiments", "check experiments/*.yml (the promotion API's experiments) and list them")
def _experiments(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--dir", type=Path, default=None,
                        help="folder of <key>.yml files (default EWH_EXPERIMENTS_DIR)")
    parser.add_argument("--user", default=None,
                        help="also print the variant this userId gets in each experiment")
    return _run


def _run(args: argparse.Namespace) -> int:
    from ewh.common.clock import utc_now
    from ewh.common.settings import get_settings
    from ewh.promotion.assignment import pick_variant
    from ewh.promotion.experiments import ExperimentConfigError, load_experiments

    folder = args.dir or get_settings().experiments_dir
    try:
        experiments = load_experiments(folder)
    except ExperimentConfigError as exc:
        raise OperationalError(f"invalid experiments:\n{exc}") from exc
    now = utc_now()
    for key, experiment in experiments.items():
        weights = ", ".join(f"{v.name} {v.weight:g}" for v in experiment.variants)
        state = "running" if experiment.running(now) else "not running"
        line = f"{key}: {experiment.placement}, {weights}, {state}"
        if args.user is not None:
            line += f"; {args.user} -> {pick_variant(experiment, args.user)}"
        print(line)
    print(f"{len(experiments)} experiments in {folder}: valid")
    return 0
