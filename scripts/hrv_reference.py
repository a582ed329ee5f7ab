#!/usr/bin/env python3
"""Reference HRV time-domain values for the vitalstream HRV window tests.

Independent implementation: hrv-analysis 1.0.6 (Aura Healthcare, GPL-3.0; used
only as a tool here, none of its code is shipped) `get_time_domain_features`.
Data: the real NN/RR series bundled with pyhrv 0.5.0 (`pyhrv/files/
SampleNNISeriesShort.npy`, `SampleNNISeriesLong.npy`), segments of MIT-BIH
NSRDB records (PhysioNet). See tests/fixtures/hrv/README.md.

Usage (from the repository root):

    python3 -m venv /tmp/hrvenv
    /tmp/hrvenv/bin/pip install numpy==2.4.6 hrv-analysis==1.0.6
    /tmp/hrvenv/bin/pip download --no-deps -d /tmp/pyhrv pyhrv==0.5.0
    /tmp/hrvenv/bin/python scripts/hrv_reference.py --pyhrv-wheel /tmp/pyhrv/pyhrv-0.5.0-py3-none-any.whl

It (re)writes tests/fixtures/hrv/{nsrdb_short_rr_ms.txt, nsrdb_long_rr_ms.txt,
expected.json}.

Windowing mirrors vitalstream: the series starts at t = 0 (epoch-aligned), beat
i is at t_i = sum(rr[0..=i]) and belongs to the tumbling window
floor(t_i / window_ms). Each window is analysed on its own.

Filters:
* "none": every RR is an NN interval; the library computes everything.
* "malik": vitalstream's rule (DESIGN.md §4): reject RR outside 300..=2000 ms,
  then reject RR_i when |RR_i - RR_ref| > 0.2 * RR_ref, RR_ref being the last
  *accepted* RR of the same window (the first in-range RR of a window is
  accepted). hrv-analysis' own `remove_ectopic_beats(method="malik")` compares
  with the previous *raw* RR and accepts every beat that follows an outlier, so
  its selection differs; we therefore build the rejection mask here (the only
  non-library step) and mark rejected beats NaN. The library's NaN-aware
  statistics then give mean NN, SDNN (ddof=1), RMSSD and NN50 over successive
  differences between adjacent accepted beats only (a difference touching a NaN
  is NaN and ignored), exactly vitalstream's definition.

Two library definitions differ from DESIGN.md §4 and are adapted explicitly:
* pNN50: the library divides NN50 by len(series) - 1 (counting pairs that touch
  a rejected beat); DESIGN divides by the number of successive differences. We
  use 100 * nni_50 / (number of non-NaN differences), nni_50 from the library.
* mean HR: the library averages instantaneous HR (mean of 60000/NN); DESIGN
  uses 60000 / mean NN. We use 60000 / mean_nni, mean_nni from the library.
For information the library's own values are recorded too (lib_pnni_50,
lib_mean_hr, and lib_malik_rejected: what its own Malik filter would reject).
"""
import argparse
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
from hrvanalysis import get_time_domain_features, remove_ectopic_beats

WINDOW_MS = 300_000
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "hrv"


def malik_mask(rr):
    """True where vitalstream's malik filter accepts the RR interval."""
    ok = []
    last = None
    for x in rr:
        if not 300 <= x <= 2000:
            ok.append(False)
            continue
        if last is not None and abs(x - last) > 0.2 * last:
            ok.append(False)
            continue
        ok.append(True)
        last = x
    return ok


def window_reference(rr, filt):
    rr = [int(x) for x in rr]
    mask = malik_mask(rr) if filt == "malik" else [True] * len(rr)
    nn = np.array([float(x) if m else np.nan for x, m in zip(rr, mask)])
    f = get_time_domain_features(nn)
    diffs = np.diff(nn)
    n_diffs = int(np.sum(~np.isnan(diffs)))
    lib_rejected = int(
        np.sum(np.isnan(remove_ectopic_beats([float(x) for x in rr], method="malik", verbose=False)))
    )
    return {
        "filter": filt,
        "n_beats": int(sum(mask)),
        "n_rejected": int(len(rr) - sum(mask)),
        "mean_nn_ms": float(f["mean_nni"]),
        "sdnn_ms": float(f["sdnn"]),
        "rmssd_ms": float(f["rmssd"]),
        "pnn50_pct": 100.0 * float(f["nni_50"]) / n_diffs,
        "mean_hr_bpm": 60000.0 / float(f["mean_nni"]),
        "n_successive_differences": n_diffs,
        "lib_pnni_50": float(f["pnni_50"]),
        "lib_mean_hr": float(f["mean_hr"]),
        "lib_malik_rejected": lib_rejected,
    }


def windows(rr):
    t = np.cumsum(rr)
    idx = t // WINDOW_MS
    for w in sorted(set(idx.tolist())):
        yield w, [x for x, i in zip(rr, idx) if i == w]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyhrv-wheel", required=True)
    args = ap.parse_args()
    out = {"window_ms": WINDOW_MS, "series": {}}
    with zipfile.ZipFile(args.pyhrv_wheel) as z:
        for name, member in [
            ("nsrdb_short", "pyhrv/files/SampleNNISeriesShort.npy"),
            ("nsrdb_long", "pyhrv/files/SampleNNISeriesLong.npy"),
        ]:
            rr = np.load(io.BytesIO(z.read(member))).astype(np.int64).tolist()
            (FIXTURES / f"{name}_rr_ms.txt").write_text("".join(f"{x}\n" for x in rr))
            wins = []
            for w, seg in windows(rr):
                for filt in ("none", "malik"):
                    ref = window_reference(seg, filt)
                    ref["window_start_ms"] = int(w * WINDOW_MS)
                    ref["n_rr_in_window"] = len(seg)
                    assert all(math.isfinite(v) for v in ref.values() if isinstance(v, float))
                    wins.append(ref)
            out["series"][name] = {"source_member": member, "n_rr": len(rr), "windows": wins}
    (FIXTURES / "expected.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
