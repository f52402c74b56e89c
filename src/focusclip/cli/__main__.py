"""``python -m focusclip.cli ...`` (also what ``torchrun -m focusclip.cli train`` runs)."""

import sys

from focusclip.cli import main

sys.exit(main())
