"""`python -m edge.twin.vertex.serving --model-dir DIR --port PORT ...`: run a model server."""

import sys

from edge.twin.vertex.serving.server import main

if __name__ == "__main__":
    sys.exit(main())
