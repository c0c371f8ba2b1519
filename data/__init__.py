"""Bundled example measurement files, installed as the package ``rfprior.data``.

Find them with :func:`rfprior.io.bundled` (``rfprior.io.bundled("mimo.h5")``); see
``README.md`` here for their content and the file format, ``make_data.py`` to regenerate them.
"""
