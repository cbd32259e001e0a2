"""The pilot: what runs on a worker node.

Everything in this package imports only the standard library, ``httpx``, ``frazil.errors`` and
its own modules, because worker nodes have nothing else installed.

- ``checksum`` — streaming sha256/md5 of files and their verification.
- ``transfer`` — staging files in and out through pluggable URL-scheme handlers.
- ``cache`` — a directory of downloaded files kept by checksum, shared between pilots.
- ``modules`` — IPModule of "The IceProd Framework": the ``Module`` base class and the
  built-in modules.
- ``execute`` — runs one module, measured: a script as a subprocess, a class through
  ``classrun`` in a worker of the module host (``modulehost``, ``worker``): a forked process
  that runs one class run at a time, each with the task's code imported afresh.
"""
