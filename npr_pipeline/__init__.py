"""npr-pipeline: the production platform of Norsk pasientregister (NPR).

The domain core lives here as plain typed Python; the Dagster layer in ``assets/`` only calls it.
"""

__version__ = "0.1.0"
