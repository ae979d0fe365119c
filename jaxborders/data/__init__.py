"""Data sets of the experiments, one module per source (``redgreen``, ``quadrant``, ``tfds_source``, ``video``, ...).

Each source module is a data source of the trainer (see ``train/README.md``): it defines ``DEFAULTS`` (its
``data.*`` config keys), ``SPLITS`` and ``load(data_config, split, seed)``, returning arrays or a
``stream.Stream`` (and raising ``stream.DataMissingError`` when the data set is not on disk). The other modules are
shared parts: ``stream`` (that interface), ``pipeline`` (the grain pipeline behind streamed sources),
``tfds_catalog`` and ``tfds_records`` (TFDS data sets and records), ``transforms``, ``patches``. Nothing is
imported here so that importing one source never pulls in another's dependencies, and nothing here imports the
trainer (``train``).
"""
