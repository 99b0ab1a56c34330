"""Speed-only code of the handwriting models, each part tested against the plain
version it replaces: the recurrent layers' fused forward and hand-written
backward passes and their work memory (recurrent.py), CUDA graphs for the
window loop on a GPU (cudagraph.py), prepacked weights for sampling
(packed.py), and the numpy sampling step on a CPU (npstep.py). The plain
model (hand/model.py) reads like the paper; its fast path is one call away.
"""
