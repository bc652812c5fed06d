"""``medsleep dashboard``'s launcher: import the library stack, then start Streamlit.

Streamlit imports what a page needs on the first session that runs it, so the first
clinician after a (re)start waited ~3 s more than the next (the read model, exports, the PDF
report, and PyOD with scikit-learn for the provisional markers). Imported here, before the
server listens, they are already in ``sys.modules`` when the first session runs the app.

    python dashboard/serve.py run dashboard/app.py [streamlit options]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def preload() -> None:
    """Import what the pages import, and the detectors the policy in force names."""
    import medsleep.archive
    import medsleep.export.job
    import medsleep.export.night_report
    import medsleep.read.digest
    import medsleep.read.patient
    import medsleep.read.prepared  # noqa: F401
    from medsleep.errors import MedsleepError
    from medsleep.policy import load_policy
    from medsleep.read.provisional import warm_up

    path = os.environ.get("MEDSLEEP_POLICY")
    try:
        policy = load_policy(Path(path) if path else None)
    except MedsleepError:  # the app itself says what is wrong with it, on the page
        return
    warm_up(policy)


def main() -> None:
    from streamlit.web import cli

    preload()
    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
