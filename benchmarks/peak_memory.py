"""Peak memory (max RSS) and wall time of every command on the demo's data.

Runs each binary as its own process (`python -m pipelines.<name>`, the
code of this checkout) and reads the process's max RSS from the kernel
(`os.wait4`'s `ru_maxrss`, what `/usr/bin/time -v` prints as "Maximum
resident set size"): the demo itself (both training stages, unless
`--demo_dir` names the output of an earlier `alm-demo`), then alm-synth
and alm-convert at the demo's size, alm-evaluate of the demo's ALM model
on its test split, alm-export (SavedModel alone, then every format with
the float16 and int8 LiteRT files), and alm-predict of the exported
SavedModel on the demo's synthetic images.

Usage:
  .venv/bin/python -m benchmarks.peak_memory --work_dir=/tmp/peaks \
      [--demo_dir=demo_output] [--json=peaks.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The demo's synthetic data set size and seed (alm_tf.demo.run.DemoConfig's defaults).
NUM_IMAGES, SEED = 1200, 0


def measure(name: str, args: list[str], log_dir: str) -> dict:
    """Runs `python -m pipelines.<args[0]> args[1:]`; its max RSS (bytes), wall time and exit code."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", f"pipelines.{args[0]}", *args[1:]]
    with open(os.path.join(log_dir, f"{name}.log"), "w") as log:
        t0 = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    row = {"command": name, "argv": " ".join(["alm-" + args[0].replace("_", "-"), *args[1:]]),
           "max_rss_bytes": usage.ru_maxrss * 1024, "seconds": round(seconds, 1), "exit_code": code}
    print(f"{name:28s} {usage.ru_maxrss / 2**20:6.2f} GiB {seconds:7.1f} s  exit {code}", flush=True)
    return row


def commands(demo_dir: str, work: str) -> list[tuple[str, list[str]]]:
    """(name, [binary, flags...]) of every measured command but the demo."""
    records, model = os.path.join(demo_dir, "records"), os.path.join(demo_dir, "models", "alm")
    return [
        ("alm-synth", ["synth", f"--output_dir={work}/synth", f"--num_images={NUM_IMAGES}", f"--seed={SEED}"]),
        ("alm-convert", ["convert", "--format=csv", f"--annotations={work}/synth/annotations.csv",
                         f"--images_dir={work}/synth", f"--output_dir={work}/records"]),
        ("alm-evaluate", ["evaluate", f"--data_dir={records}", "--split=test", f"--model={model}",
                          f"--output_dir={work}/eval"]),
        ("alm-export saved_model", ["export", f"--model_dir={model}", f"--export_dir={work}/export"]),
        ("alm-export all formats", ["export", f"--model_dir={model}", f"--export_dir={work}/export_all",
                                    "--format=saved_model,onnx,litert,openvino",
                                    "--litert_precision=float16,int8", f"--calibration_data={records}"]),
        ("alm-predict images", ["predict", f"--model={work}/export/1",
                                f"--images={demo_dir}/synth/images", f"--output_dir={work}/predictions"]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", required=True, help="An empty or missing folder for the outputs.")
    parser.add_argument("--demo_dir", help="The output of an earlier alm-demo (default: run it).")
    parser.add_argument("--json", help="Also write the rows to this file.")
    args = parser.parse_args()
    if os.path.exists(args.work_dir) and os.listdir(args.work_dir):
        sys.exit(f"--work_dir is not empty: {args.work_dir!r}")
    logs = os.path.join(args.work_dir, "logs")
    os.makedirs(logs)
    rows, demo_dir = [], args.demo_dir
    if demo_dir is None:
        demo_dir = os.path.join(args.work_dir, "demo")
        rows.append(measure("alm-demo", ["demo", f"--output_dir={demo_dir}"], logs))
    for name, argv in commands(os.path.abspath(demo_dir), os.path.abspath(args.work_dir)):
        rows.append(measure(name, argv, logs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
