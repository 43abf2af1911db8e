"""Write the docs' Results page from ``graphrec benchmark`` outputs.

    python benchmarks/results_page.py runs/bench/diginetica runs/bench/yoochoose1_64 \\
        runs/bench/amazon-games --out docs/results.md

Each argument is a benchmark output folder (its ``results.json``); the page
gets one section per dataset, in the order given, with the table of
``results.md`` and the run's budget (epochs, seeds, samples).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from graphrec.benchmark import results_markdown

HEADER = """# Results

Every table on this page is generated, not typed: `graphrec benchmark` trains each
model with its registry defaults (the hyper-parameters of its paper or of its
authors' code), selects the epoch on the validation split, and tests once; then
`python benchmarks/results_page.py` turns its `results.json` files into this page.

- Test metrics are in %, mean ± standard deviation over seeds (no ± with one seed).
- **Full ranking**: every item of the catalogue is ranked, and ties count against
  the target ([evaluation protocol](concepts/evaluation.md)).
- `AUC (100 neg.)` and the `(100 neg.)` columns rank the target against the same
  100 sampled negatives for every model. They are the only figures for the
  rankers (DIN, DIEN), whose full-catalogue ranking costs one forward pass per
  item.
- A row `<model>, refit` is the same model trained again on the training and
  validation splits together, for the epochs that validation chose (`graphrec
  benchmark --refit`), as the papers train on the whole training file. The test
  split chooses nothing there either ([refit](concepts/evaluation.md#model-selection)).
- Training time and samples/s are per run, on the machine named below, with one
  thread per run while other runs shared the cores. Compare them within a table,
  not across machines.
"""


def _uneven(result: dict) -> bool:
    """Whether some trained rows have fewer runs than the seeds asked for."""
    runs = [s["runs"] for s in result["summary"].values() if "best_epoch" in s]
    return any(n != len(result["seeds"]) for n in runs)


def section(result: dict, note: str | None) -> str:
    samples = result["samples"]
    epochs = result.get("epochs") or "each model's default"
    lines = [
        f"## {result['dataset']}",
        "",
        f"{samples['train']:,} training / {samples['valid']:,} validation / "
        f"{samples['test']:,} test samples, {result['num_items']:,} items. "
        f"Seeds {', '.join(map(str, result['seeds']))}"
        + (" (the seeds column counts each row's runs)" if _uneven(result) else "")
        + f"; epoch budget: {epochs}"
        + (f", at most {result['max_steps']} steps per epoch" if result.get("max_steps") else "")
        + ".",
        "",
    ]
    if note:
        lines += [note, ""]
    lines.append(results_markdown(result))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folders", nargs="+", help="graphrec benchmark output folders")
    parser.add_argument("--out", default="docs/results.md")
    parser.add_argument("--machine", default="2 CPU cores (no GPU)")
    parser.add_argument(
        "--note",
        action="append",
        default=[],
        metavar="DATASET=TEXT",
        help="a paragraph under a dataset's heading (repeatable)",
    )
    args = parser.parse_args()
    notes = dict(n.split("=", 1) for n in args.note)
    parts = [HEADER, f"Machine: {args.machine}.\n"]
    for folder in args.folders:
        path = Path(folder) / "results.json"
        if not path.is_file():
            raise SystemExit(f"{path} not found: run graphrec benchmark --out {folder} first")
        result = json.loads(path.read_text())
        parts.append(section(result, notes.get(result["dataset"])))
    Path(args.out).write_text("\n".join(parts))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
