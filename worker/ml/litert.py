"""The model on LiteRT (the CPU worker's runtime): one interpreter, XNNPACK on every operator, no TensorFlow or Keras.

The converted graph (worker.ml.litert_export) takes (n, S, S, 1) float32 grey levels and gives the raw Grad-CAM
maps (n, h, w), the pooled features (n, d) and the logits (n, 1), the outputs of its signature in that order: the
arrays of the Keras engine (worker.ml.gradcam.GradCam.batch). Imports numpy and ai_edge_litert only.
"""

from __future__ import annotations

import os
import threading

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from worker.ml.cams import CamResult
from worker.ml.spec import ModelSpec

SIGNATURE = "serving_default"  # worker.ml.litert_export's (the converter's name for its one function)
DELEGATE_NODE = "DELEGATE"  # the name the interpreter gives a delegate's node (XNNPACK's, applied by default)


def default_threads() -> int:
    """The cores this process may run on (a CPU set or taskset narrows os.cpu_count())."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class LiteRtEngine:
    """logits, raw Grad-CAM maps and pooled features for a batch of model inputs. The interpreter is resized only
    when a chunk's size changes (allocating again costs about a millisecond); one batch at a time (a lock)."""

    runtime = "litert"

    def __init__(self, spec: ModelSpec, threads: int | None = None) -> None:
        self.threads = threads or default_threads()
        self._interpreter = Interpreter(model_path=str(spec.litert_path()), num_threads=self.threads)
        # The graph's outputs in the order worker.ml.litert_export returns them: maps, features, logits.
        outputs = self._interpreter.get_signature_runner(SIGNATURE).get_output_details()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._outputs = [outputs[f"output_{k}"]["index"] for k in range(3)]
        self._size = spec.input_size
        self._lock = threading.Lock()
        self._shape: tuple[int, ...] = ()

    def warm_up(self, chunk: int = 64) -> None:
        """Allocate for a single study, then for a full chunk (the shapes the worker runs most)."""
        for n in (1, chunk):
            self.batch(np.zeros((n, self._size, self._size), np.uint8), chunk)

    def batch(self, images: np.ndarray, chunk: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """images: (n, H, W) uint8 -> logits (n,) float64, cams (n, h, w) float32 >= 0 (raw), features (n, d)."""
        logits, cams, feats = [], [], []
        for i in range(0, len(images), chunk):
            cam, feat, logit = self._run(images[i : i + chunk, :, :, None].astype(np.float32))
            logits.append(logit)
            cams.append(cam)
            feats.append(feat)
        cam_all = np.concatenate(cams).astype(np.float32)
        cam_all[~np.isfinite(cam_all)] = 0.0
        return np.concatenate(logits).astype(np.float64), cam_all, np.concatenate(feats).astype(np.float32)

    def __call__(self, image: np.ndarray) -> CamResult:
        """image: (H, W) uint8 model input -> its logit, raw map and features."""
        logits, cams, feats = self.batch(image[None])
        return CamResult(logit=float(logits[0]), cam=cams[0], features=feats[0])

    def outputs(self, images: np.ndarray, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """logits and features: batch() without the maps (one graph computes all three)."""
        logits, _, feats = self.batch(images, chunk)
        return logits, feats

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x: (n, H, W, 1) float32 -> (cams, features, logits), copies of the interpreter's outputs."""
        with self._lock:
            if x.shape != self._shape:
                self._interpreter.resize_tensor_input(self._input, list(x.shape))
                self._interpreter.allocate_tensors()
                self._shape = x.shape
            self._interpreter.set_tensor(self._input, x)
            self._interpreter.invoke()
            cams, feats, logits = [self._interpreter.get_tensor(k) for k in self._outputs]
        return cams, feats, logits[:, 0]

    def delegated(self) -> bool:
        """Whether XNNPACK runs the whole graph (whole_graph_delegated)."""
        with self._lock:
            if not self._shape:
                self._interpreter.allocate_tensors()
            return whole_graph_delegated(self._interpreter)


def whole_graph_delegated(interpreter: Interpreter) -> bool:
    """Whether one delegate (XNNPACK, which the interpreter applies by default) runs the whole graph: a single
    delegate node, reading the input and giving every output (an operator XNNPACK cannot run would split the
    graph, and that part would run on LiteRT's own kernels). The interpreter's tensors must be allocated."""
    delegates = [op for op in interpreter._get_ops_details() if op["op_name"] == DELEGATE_NODE]
    inputs = {d["index"] for d in interpreter.get_input_details()}
    outputs = {d["index"] for d in interpreter.get_output_details()}
    return len(delegates) == 1 and inputs <= set(delegates[0]["inputs"]) and outputs <= set(delegates[0]["outputs"])
