"""raydiff_ros.data: synthetic multi-view training data (ROS-free).

Modules (one job each):

* ``meshes``: triangle meshes, OBJ reading/writing, generated UVs, superquadrics;
* ``assets``: the pybullet_data mesh and texture catalogue, and the mesh cache;
* ``textures``: procedural numpy textures;
* ``camera_models``: look-at cameras, intrinsics from a field of view, pybullet matrices;
* ``scene_sampling``: random object-centric and robot-rig scenes and their cameras;
* ``renderer``: pybullet TinyRenderer rendering of a scene (RGB + object labels);
* ``shards``: the shard file format (``README.md`` documents it);
* ``generate``: deterministic, parallel rendering of view sets into shards;
* ``normalization``: the official training normalisation of a camera set;
* ``dataset``: the torch Dataset of training samples (crops, NDC grid, target rays).

The ``raydiff-render`` command is ``raydiff_ros/cli/render.py``.

pybullet is imported only by the renderer (rendering needs it; reading shards does not).
"""
