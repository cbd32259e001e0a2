"""The pilot: what runs on a worker node.

Everything in this package imports only the standard library, ``httpx``, ``frazil.errors`` and
its own modules, because worker nodes have nothing else installed.

- ``__main__`` — ``python -m frazil.pilot``: the entry point a batch job runs.
- ``run`` — the pilot of one attempt: spec, stage in, modules, stage out, report, clean up.
- ``multi`` — the multi-task pilot: one batch job that exchanges reports for tasks.
- ``standalone`` — the pilot without a server (unmonitored mode): spec and reports as files.
- ``checksum`` — streaming sha256/md5 of files and their verification.
- ``transfer`` — staging files in and out through pluggable URL-scheme handlers
  (``protocols``: their interface and local files; ``httptransfer``: http and https;
  ``fsutil``: temporary files renamed into place).
- ``cache`` — a directory of downloaded files kept by checksum, shared between pilots.
- ``modules`` — IPModule of "The IceProd Framework": the ``Module`` base class and the
  built-in modules.
- ``execute`` — runs one module, measured: a script as a subprocess, a class through
  ``classrun`` in a worker of the module host (``modulehost``, ``worker``): a forked process
  that runs one class run at a time, each with the task's code imported afresh (compiled once
  per content by ``codecache``).
"""
