"""``python -m conformance``: see conformance/README.md."""
import sys

from conformance.run import main

if __name__ == "__main__":
    sys.exit(main())
