"""The ``hwnas`` command line (installed as ``hwnas.cli``)."""
