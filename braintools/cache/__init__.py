"""The npy cache of notebook 03: patients converted once to memory-mappable ``.npy`` files, and read back fast.

- ``sources``: where patients come from (``h5_sources``, ``nifti_sources``);
- ``build``: ``precache`` converts them with a process pool (atomic, resumable, one run per folder at a time);
- ``store``: the files, the manifest (with each patient's box: caches may be cropped to the brain), ``load_cached_case``
  and ``read_patch`` (memory maps);
- ``verify``: check the cache against its sources;
- ``lru``: keep recently used volumes in memory within a byte budget;
- ``benchmark``: the timing helpers of notebook 03.
"""
