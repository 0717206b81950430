#!/usr/bin/env python3
"""Makes a busybox image offline from the host's busybox-static (see cli/busybox_image.py).

    python3 examples/make_busybox_image.py busybox.tar --tag busybox:local [--format oci|docker]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cli.busybox_image import (  # noqa: F401  (re-exported for the tests and scripts)
    Entry,
    busybox_entries,
    layer_tar,
    main,
    write_docker_archive,
    write_oci_layout,
)

if __name__ == "__main__":
    main()
