"""What runs the model for a Predictor: an engine turns a batch of model inputs into logits, raw Grad-CAM maps and
pooled features. One Predictor pipeline, two engines, chosen by name (the worker's INFERENCE_RUNTIME):

- "litert": the converted graph on LiteRT with XNNPACK (worker.ml.litert): the CPU worker's, no TensorFlow loaded;
- "tensorflow": the Keras model with Grad-CAM by automatic differentiation (worker.ml.gradcam), on Keras's backend
  (TensorFlow on the CPU, the reference and the training stack; JAX on the GPU worker, KERAS_BACKEND).

Each engine's framework is imported only when that engine is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from worker.ml.spec import ModelSpec

if TYPE_CHECKING:
    from worker.ml.gradcam import GradCam
    from worker.ml.litert import LiteRtEngine

RUNTIMES = ("litert", "tensorflow")
# Every engine has: runtime ("litert", "tensorflow" or "jax": what a result records); warm_up(chunk) (compile or
# allocate for the batch sizes batch() runs); batch(images (n, H, W) uint8, chunk) -> logits (n,) float64, raw maps
# (n, h, w) float32 >= 0, features (n, d) float32, in passes of at most chunk images; outputs(images, chunk) ->
# logits and features alone (for evaluation); and engine(image) -> a CamResult for one image.
Engine: TypeAlias = "GradCam | LiteRtEngine"


def load(spec: ModelSpec, runtime: str, threads: int | None = None) -> Engine:
    """The engine `runtime` for the model of `spec`, its files checked against the card. threads: the cores
    LiteRT may use (None: all this process may run on); Keras's backend sets its own."""
    if runtime == "litert":
        from worker.ml.litert import LiteRtEngine

        return LiteRtEngine(spec, threads)
    if runtime == "tensorflow":
        import keras

        from worker.ml.gradcam import GradCam, analysis_model

        model = keras.models.load_model(spec.verified_path(spec.weights_file, spec.sha256), compile=False)
        return GradCam(analysis_model(model, spec.conv_layers, spec.feature_layers), len(spec.conv_layers))
    raise ValueError(f"unknown inference runtime {runtime!r}; one of {', '.join(RUNTIMES)}")
