"""Finding processes that a test's hostile code left behind on the host."""

import os


def processes_carrying(marker: str) -> list[int]:
    """The host processes whose command line contains ``marker`` (a sleep duration no other
    process uses, given to the processes a test starts)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found
