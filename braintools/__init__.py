"""braintools: the helper package of the BraTS brain-tumour segmentation course.

One subpackage per stage of the course, in the order the notebooks meet them: ``data`` (real BraTS files, 01-02),
``synthetic`` (the offline dataset, 01-02), ``cache`` (03), ``datasets``, ``models`` and ``training`` (04-06),
``inference`` and ``evaluation`` (05-07), ``viz`` (02-08); at the root ``profiles``, ``paths``, ``course``,
``runtime``, ``environment``, ``errors`` and the command line (``cli``). Plumbing lives in ``_private``.

Import the module that defines what you use, e.g. ``from braintools.data import io, labels`` or
``from braintools.evaluation.dice import dice``. Importing the package has no side effects (no downloads, no
threads, no device set-up).
"""

__version__ = "0.1.0"
