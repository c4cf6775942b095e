"""Research extracts: approved variables only, per-project pseudonyms, small-cell suppression.

``dictionary`` (what exists and how sensitive it is), ``spec`` (what a project may ask for),
``pseudonym`` (the person key), ``suppression`` (aggregates), ``extract`` (the run and its
manifest), ``docs`` (docs/extracts.md, generated from the dictionary).
"""
