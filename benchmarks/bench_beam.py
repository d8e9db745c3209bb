"""Beam against the local path on the same input, on this machine.

Conversion: alm-synth images -> `alm_tf.data.convert.convert` (a pool of
--workers processes) against `alm_tf.beam.convert.convert` with the
DirectRunner (the offline local runner) in multi-processing mode with 1
and 2 workers. Tagging: synthetic street videos -> alm-predict's path
(`alm_tf.people.run.predict_people`, then `search.index.index_folders`,
one video after the other, one model load) against
`alm_tf.beam.archive.tag_archive` with 1 and 2 workers. HOG finds the
people (the default detector), ByteTrack tracks them; the model is the
full ALM model (BN-Inception, 256x128, PA-100K's attributes, random
weights) unless --model names one. Every figure is wall time of the whole
job, Beam's start-up (worker processes, their imports and model load)
included.

The machine may be shared: each of --rounds runs the local job and Beam
with 1 and 2 workers on the same input, in alternating order (local
first, then last), and the report gives each one's best and median time
and the ratio of Beam's median to the local median, and the CPU seconds
each job spent (this process and its ended children: the local pool,
Beam's worker processes), which the other jobs of a shared machine do not
change as much as the wall time.

Usage:
  .venv/bin/python -m benchmarks.bench_beam [--num_images=400] [--videos=3] \
      [--frames=40] [--workers=2] [--rounds=2] [--model=PATH] [--skip_convert] [--skip_archive] \
      [--json=out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from alm_tf.inference import images as prediction  # noqa: E402
from alm_tf.people import run as people_prediction  # noqa: E402
from alm_tf.people import synth_frames, video  # noqa: E402
from alm_tf.beam import archive as beam_archive  # noqa: E402
from alm_tf.beam import convert as beam_convert  # noqa: E402
from alm_tf.beam import options as beam_options  # noqa: E402
from alm_tf.data import schemas, synth  # noqa: E402
from alm_tf.data.convert import convert  # noqa: E402
from alm_tf.data.convert_config import ConvertConfig  # noqa: E402
from alm_tf.people import detectors  # noqa: E402
from alm_tf.people import footage as footage_run  # noqa: E402
from alm_tf.search import index as index_lib  # noqa: E402


def _beam_args(workers: int) -> list[str]:
    return ["--runner=DirectRunner", f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]


def _cpu_s() -> float:
    """CPU seconds of this process and of its ended children (pool processes, Beam's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(fn, cpu: list | None = None) -> float:
    """Wall seconds of `fn()`; its CPU seconds appended to `cpu` when given."""
    start, start_cpu = time.perf_counter(), _cpu_s()
    fn()
    if cpu is not None:
        cpu.append(round(_cpu_s() - start_cpu, 2))
    return time.perf_counter() - start


def _alternating(jobs: dict, rounds: int) -> dict:
    """Each job (name -> callable) `rounds` times, the order reversed every other round:
    {name: {"best_s", "median_s", "runs_s"}} and each Beam job's ratio to the first (local) job."""
    runs: dict[str, list[float]] = {name: [] for name in jobs}
    cpu: dict[str, list[float]] = {name: [] for name in jobs}
    for r in range(rounds):
        for name in (list(jobs) if r % 2 == 0 else list(jobs)[::-1]):
            runs[name].append(round(_timed(jobs[name], cpu[name]), 2))
            print(f"  round {r}: {name} {runs[name][-1]} s, {cpu[name][-1]} CPU s", flush=True)
    out = {name: {"best_s": min(t), "median_s": round(float(np.median(t)), 2), "runs_s": t,
                  "median_cpu_s": round(float(np.median(cpu[name])), 2)} for name, t in runs.items()}
    local = out[next(iter(jobs))]["median_s"]
    for name in list(jobs)[1:]:
        out[name]["ratio_to_local"] = round(out[name]["median_s"] / local, 2)
    return out


def bench_convert(root: str, num_images: int, workers: int, rounds: int) -> dict:
    synth.generate(synth.SynthConfig(output_dir=os.path.join(root, "synth"), num_images=num_images, seed=0))
    base = dict(format="csv", annotations=os.path.join(root, "synth", "annotations.csv"),
                images_dir=os.path.join(root, "synth"), workers=workers, show_progress=False)

    def target(name):
        path = os.path.join(root, name)
        shutil.rmtree(path, ignore_errors=True)
        return ConvertConfig(output_dir=path, **base)

    jobs = {f"local_{workers}_processes": lambda: convert(target("local"))}
    for n in (1, 2):
        jobs[f"beam_{n}_workers"] = lambda n=n: beam_convert.convert(target(f"beam{n}"), _beam_args(n))
    return {"images": num_images, **_alternating(jobs, rounds)}


def _model(root: str, path: str | None) -> str:
    if path:
        return path
    import alm_tf
    from alm_tf.artifacts import files

    model = alm_tf.build_model(len(schemas.PA100K_ATTRIBUTES), input_shape=(256, 128, 3))
    return files.save_keras(model, os.path.join(root, "alm.keras"),
                            files.keras_description(schemas.PA100K_ATTRIBUTES, image_size=(256, 128)))


def _videos(root: str, count: int, frames: int) -> list[str]:
    from PIL import Image

    paths = []
    for k in range(count):
        info = synth_frames.generate_frames(synth_frames.FramesConfig(os.path.join(root, f"seq{k}"),
                                                                      num_frames=frames, seed=k))
        arrays = [np.asarray(Image.open(p).convert("RGB")) for p in info["frames"]]
        paths.append(video.write_video(os.path.join(root, "videos", f"cam{k}.mp4"), arrays,
                                       fps=synth_frames.VIDEO_FPS))
    return paths


def bench_archive(root: str, count: int, frames: int, model_path: str | None, rounds: int) -> dict:
    os.makedirs(os.path.join(root, "videos"), exist_ok=True)
    videos = _videos(root, count, frames)
    model = _model(root, model_path)
    # HOG's window is 64x128: the synthetic people (35-60% of 240 px) need the frames enlarged twice.
    footage = footage_run.FootageConfig(detectors.DetectorConfig(detectors.HOG, upscale=2.0))
    cfg = beam_archive.ArchiveConfig(videos=tuple(videos), model=model, index=os.path.join(root, "unused"),
                                     footage=footage)
    out = {"videos": count, "frames_per_video": frames}

    def local():
        predictor = prediction.load_image_predictor(model)
        for k, path in enumerate(videos):
            folder = os.path.join(root, f"people{k}")
            shutil.rmtree(folder, ignore_errors=True)
            config = beam_archive.people_config(cfg, path, folder)
            people_prediction.predict_people(predictor, config, report=lambda _: None)
            index_lib.index_folders([folder], os.path.join(root, "local_index"))

    results = []

    def beam(n):
        index = os.path.join(root, f"beam_index{n}")
        shutil.rmtree(index, ignore_errors=True)
        run = beam_archive.ArchiveConfig(**{**cfg.__dict__, "index": index})
        results.append(beam_archive.tag_archive(run, _beam_args(n)))

    jobs = {"local": local, "beam_1_workers": lambda: beam(1), "beam_2_workers": lambda: beam(2)}
    out.update(_alternating(jobs, rounds))
    out["tracks"] = sum(results[0].tagged.values())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_images", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2, help="local conversion processes")
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each job, in alternating order")
    parser.add_argument("--model", default=None)
    parser.add_argument("--skip_convert", action="store_true")
    parser.add_argument("--skip_archive", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    beam_options.quiet_logs()
    # Beam's import, once per command, is timed on its own: in the jobs' times it would fall on whichever runs first.
    results = {"import_apache_beam_s": round(_timed(lambda: __import__("apache_beam")), 2)}
    with tempfile.TemporaryDirectory() as root:
        if not args.skip_convert:
            results["convert"] = bench_convert(root, args.num_images, args.workers, args.rounds)
            print(json.dumps(results["convert"]), flush=True)
        if not args.skip_archive:
            results["archive"] = bench_archive(root, args.videos, args.frames, args.model, args.rounds)
            print(json.dumps(results["archive"]), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
