"""raydiff_ros.cli: the console commands, on top of the package (nothing below imports them).

Modules (one command each, ``main(argv) -> exit code``):

* ``estimate``: ``raydiff-estimate``, camera poses of 2..N image files;
* ``evaluate``: ``raydiff-eval``, an estimator against a dataset with known poses;
* ``compare``: ``raydiff-compare``, side-by-side table of several ``raydiff-eval`` results;
* ``render``: ``raydiff-render``, synthetic training shards;
* ``train``: ``raydiff-train``, training from a YAML configuration;
* ``import_official``: ``raydiff-import-official``, an official release to our model format;
* ``common``: exit codes, argument parsing and error reporting shared by all of them.
"""
