"""Studies: thin scripts over the library that run several trainings and write a summary.

``STUDIES[name]`` is a function ``(out_dir, **options) -> Path`` returning the summary it wrote.
"""

from sslscope.studies.methods import compare_methods

STUDIES = {"methods": compare_methods}

__all__ = ["STUDIES", "compare_methods"]
