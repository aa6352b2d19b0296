"""Former home of the 2D pair kernels, now in ``fieldbench.families.disc`` and ``.prism``.

Kept only as ``fieldbench.physics.kernels2d`` for ``models/_fmm.py`` until it imports
``fieldbench.families`` directly; new code imports the family modules.
"""

from ..families.disc import disc_pair
from ..families.prism import FAR_RATIO, MULTIPOLE_ORDER, multipole_pair, prism_multipoles, prism_near, prism_pair

__all__ = ["disc_pair", "prism_pair", "prism_near", "prism_multipoles", "multipole_pair", "FAR_RATIO",
           "MULTIPOLE_ORDER"]
