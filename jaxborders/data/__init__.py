"""Data sets of the experiments, one module per source (``redgreen``, ...).

Each module is a data source of the trainer (see ``train/README.md``): it defines ``DEFAULTS`` (its
``data.*`` config keys), ``SPLITS`` and ``load(data_config, split, seed)``. Nothing is imported here so that
importing one source never pulls in another's dependencies.
"""
