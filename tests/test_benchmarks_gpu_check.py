"""``benchmarks/gpu_check.py --cpu-quick``: the GPU check's code paths, on the CPU, in seconds."""
import importlib.util
import math
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_gpu_check_cpu_quick_runs_every_check(capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.main(["--cpu-quick"])
    printed = capsys.readouterr().out
    by_check = {check.split(":")[0].split(",")[0]: (device, result, note) for check, device, result, note in rows}
    assert {"sync-free step", "step ratio", "kernel plan (foreach)", "found_inf per device",
            "sampler", "GraphSAGE 3x256 + HAM(Adam)"} <= set(by_check)
    assert [r[2] for r in rows if r[0].startswith("sync-free step")] == ["ran"] * 3
    assert [r[2] for r in rows if r[0].startswith("sync-free scheduled steps")] == ["ran"] * 3
    assert [r[2] for r in rows if r[0].startswith("CUDA graph")] == ["skipped"]
    ratios = [float(r[2].rstrip("x")) for r in rows if r[0].startswith("step ratio")]
    assert len(ratios) == 3 and all(math.isfinite(x) and x > 0 for x in ratios)
    # (the quick set is below the one pass's size threshold; the 25M set of a real run is above it)
    assert "fewer than ONE_PASS_MIN_NUMEL" in next(r[0] for r in rows if r[0].startswith("step ratio"))
    assert [r[2] for r in rows if r[0].startswith("one pass = base then HAM")] == ["ok", "ok"]
    assert [r[2] for r in rows if r[0].startswith("sync-free one pass")] == ["ran"]
    assert "CUDA plan: 1 chunk(s)" in by_check["kernel plan (foreach)"][2]
    assert by_check["found_inf per device"][1] == "ok"
    sampler = by_check["sampler"]
    assert sampler[1].endswith("M edges/s") and float(sampler[1].split("M")[0]) > 0
    assert "one-device batches: yes" in sampler[2]
    assert by_check["GraphSAGE 3x256 + HAM(Adam)"][2] == "2 of 2 batches"
    prefetch = by_check["sync-free prefetch"]
    assert prefetch[1] == "ran" and prefetch[2].startswith("4 prefetched batches") and "batches: yes" in prefetch[2]
    overlap = by_check["prefetch overlap"]
    assert overlap[1] == "ran" and overlap[2].startswith("CPU: no copy to hide") and ", with prefetch " in overlap[2]
    trainer = by_check["sync-free trainer step"]
    assert trainer[1] == "ran" and trainer[2].startswith("4 steps after 2 warm-up")
    assert "(the device is the host)" in trainer[2] and "prefetch: yes" in trainer[2]
    assert math.isfinite(float(trainer[2].split("mean loss ")[1].split(";")[0]))
    placement = by_check["placement"]
    assert placement[1] == "ran", placement
    assert "decision: graph device, features device, device_is_host True" in placement[2]
    assert "tensors in place: yes" in placement[2] and "the run reused it: yes" in placement[2]
    assert "no filler" in placement[2]
    assert math.isfinite(float(placement[2].split("loss ")[-1]))
    for check, device, result, note in rows:  # one table holding every row
        assert f"| {check} | {device} | {result} | {note} |" in printed
