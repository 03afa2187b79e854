"""raydiff_ros.training: the ``raydiff-train`` pipeline (ROS-free).

Modules (one job each):

* ``config``: the typed YAML training configuration;
* ``objectives``: the diffusion and regression x0 losses;
* ``initialization``: from-scratch weight initialisation (DiT adaLN-Zero);
* ``checkpointing``: checkpoints (our model format + optimizer state) and resuming;
* ``validation``: held-out loss and pose metrics through the inference engine;
* ``curves``: the metrics log and its PNG curves;
* ``trainer``: the training loop.

The ``raydiff-train`` command is ``raydiff_ros/cli/train.py``.
"""
