"""Write the nise static YAMLs behind `ocp-assets generate --scale` to files, to read them or run nise by hand.

The YAMLs are built by ocp_assets.core.generate.scale_yaml (deterministic; the same text every time), so
`generate --scale` never needs these files; nise runs on them as:
    nise report ocp --static-report-file scale-100k.yml --ocp-cluster-id ID --insights-upload DIR

Usage: make_scale_yaml.py [--out-dir DIR] [SCALE ...]   (default: every scale, into the current directory)
"""

import argparse
import sys
from pathlib import Path

from ocp_assets.core.generate import SCALES, scale_yaml


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path.cwd())
    parser.add_argument("scales", nargs="*", metavar="SCALE", help=f"one of {', '.join(SCALES)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.scales if name not in SCALES]
    if unknown:
        parser.error(f"unknown scale(s): {', '.join(unknown)}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in args.scales or SCALES:
        target = args.out_dir / f"scale-{name}.yml"
        text = scale_yaml(name)
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target} ({len(text):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
