"""Django-free ML package: preprocessing, model, Grad-CAM, overlay, training, evaluation.

Arrays in, frozen dataclasses out. TensorFlow is imported only by the modules that need it
(model, gradcam, inference, train) so that the web process never loads it.
"""
