import sys

from cvgad.cli import main

sys.exit(main())
