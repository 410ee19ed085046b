"""braintools: the helper package of the BraTS brain-tumour segmentation course.

Import the modules you need, for example ``from braintools import io, labels``.
Importing the package has no side effects (no downloads, no threads, no device set-up).
"""

__version__ = "0.1.0"
