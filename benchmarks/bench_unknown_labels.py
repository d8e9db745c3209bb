"""Issue 14 figures: the paper's RAP test list case at full size, and merge throughput.

Writes 8,317 copies of one 32x16 PNG and a RAP label list of 8,317 rows
(51 labels), 27 of them with Female = 2 (as the paper code's
`data_list/rap/test.txt`), converts it under each `--uncertain` policy and
merges the `ignore` conversion through the shipped `to_pa100k` mapping.
The images are tiny, so the merge time is the per-record cost (protobuf
parse and re-serialization), not I/O.

Usage:
  .venv/bin/python -m benchmarks.bench_unknown_labels /tmp/bench_unknown
"""

import os
import sys
import time

import numpy as np

from alm_tf.testing.images import image_bytes  # noqa: E402

from alm_tf.data.convert import convert  # noqa: E402
from alm_tf.data.convert_config import ConvertConfig  # noqa: E402
from alm_tf.data.merge import MergeConfig, merge  # noqa: E402

root = sys.argv[1]
os.makedirs(f"{root}/rap_images", exist_ok=True)
rng = np.random.default_rng(0)
png = image_bytes(32, 16)  # one small PNG, written under 8,317 names
uncertain = set(rng.choice(8317, 27, replace=False).tolist())
lines = []
for i in range(8317):
    name = f"CAM{i % 30:02d}_{i:05d}.png"
    with open(f"{root}/rap_images/{name}", "wb") as f:
        f.write(png)
    v = rng.integers(0, 2, size=51)
    v[0] = 2 if i in uncertain else v[0]
    lines.append(name + " " + " ".join(map(str, v)))
open(f"{root}/test.txt", "w").write("\n".join(lines) + "\n")
for policy in ("ignore", "zero", "skip"):
    t = time.perf_counter()
    m = convert(ConvertConfig(format="alm_list", annotations=(("test", f"{root}/test.txt"),), schema="rap",
                              images_dir=f"{root}/rap_images", output_dir=f"{root}/rap_{policy}", uncertain=policy,
                              workers=2, show_progress=False)).manifest["splits"]["test"]
    print(f"uncertain={policy}: {m['num_examples']} examples, skipped {m['num_skipped']}, "
          f"unknown Female {m['num_unknown'][0]}, Female ratio {m['positive_ratio'][0]} "
          f"({time.perf_counter() - t:.1f} s)")
t = time.perf_counter()
r = merge(MergeConfig(inputs=(("rap", f"{root}/rap_ignore"),), mapping="to_pa100k",
                      output_dir=f"{root}/merged", show_progress=False))
dt = time.perf_counter() - t
s = r.manifest["splits"]["test"]
print(f"merge rap -> to_pa100k: {r.num_written} records in {dt:.1f} s ({r.num_written / dt:.0f} records/s); "
      f"unknown per target {s['num_unknown']}")
