"""The command line's earlier name, kept so that job scripts written for it still run:
`python -m q2_taxdistill.engine.sharded_embedding ...` is
`python -m q2_taxdistill.engine.teacher ...` (the code is in `teacher/sharded_embedding.py`)."""
import sys

from .teacher.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
