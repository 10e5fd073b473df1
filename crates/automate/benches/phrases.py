"""Phrases and window positions shared by the vmkit and baseline sides of the wait-latency benchmark.

Each trial waits for a different phrase, far apart in spelling, so a window from one trial can never satisfy
another trial's wait.
"""

PHRASES = [
    "Ready to install Alpha", "Ready to install Bravo", "Ready to install Charlie", "Ready to install Delta",
    "Ready to install Echo", "Ready to install Foxtrot", "Ready to install Golf", "Ready to install Hotel",
    "Ready to install India", "Ready to install Juliett", "Ready to install Kilo", "Ready to install Lima",
    "Ready to install Mike", "Ready to install November", "Ready to install Oscar", "Ready to install Papa",
    "Ready to install Quebec", "Ready to install Romeo", "Ready to install Sierra", "Ready to install Tango",
    "Ready to install Uniform", "Ready to install Victor", "Ready to install Whiskey", "Ready to install Xray",
    "Ready to install Yankee", "Ready to install Zulu",
]


def position(k):
    """A window position on a 1920x1080 screen, varying with the trial."""
    return 100 + (k * 337) % 1200, 100 + (k * 211) % 800


if __name__ == "__main__":
    import sys

    k = int(sys.argv[1])
    x, y = position(k)
    print(f"{PHRASES[k % len(PHRASES)]}\t{x}\t{y}")
