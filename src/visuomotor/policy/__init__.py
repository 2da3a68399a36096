"""Policy bundles and their execution: the model contract, backends, chunking and the loop.

A bundle is `policy.onnx` with its spec embedded (bundle.py, spec.py); backends run it
(backends/: tensorrt, onnxruntime, torch); the chunk scheduler and the deploy loop turn its
outputs into time-parameterised plans (chunking.py, loop.py). This file makes `policy` a
regular package: without it, `find_packages` (setup.py) leaves the folder out of the colcon
install.
"""
