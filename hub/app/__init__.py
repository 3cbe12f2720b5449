"""The application: the composition root that builds a node and its adapters from the
configuration, the command line, ``hub call`` and ``hub tail``, the ``--workers``
supervisor, and process policies (open files, the garbage collector). It may import
every other package; none imports it.
"""
