"""Django-free ML package: preprocessing, model, Grad-CAM, overlay, training, evaluation.

Arrays in, frozen dataclasses out. TensorFlow is imported only by the modules that need it
(model, gradcam, inference, train) so that the web process never loads it. SciPy and scikit-learn are imported
inside the functions that compute with them (gate, drift, site, metrics, calibration): the web process imports
those modules for their words and dataclasses, and importing SciPy and scikit-learn would add about 2 s of CPU to
every web, worker and manage.py process it starts (tests/test_layers.py).
"""
