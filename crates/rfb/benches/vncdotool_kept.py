# vncdotool's side of the kept-connection capture benchmark: one connection, N full (non-incremental) screen
# refreshes, the time of each. Usage: python vncdotool_kept.py HOST::PORT N
import statistics
import sys
import time

from vncdotool import api

server, runs = sys.argv[1], int(sys.argv[2])
client = api.connect(server)
client.refreshScreen(incremental=False)  # first frame, as the vmkit side's connect does
times = []
for _ in range(runs):
    t = time.perf_counter()
    client.refreshScreen(incremental=False)
    times.append((time.perf_counter() - t) * 1e3)
client.disconnect()
api.shutdown()
times.sort()
print(
    f"vncdotool kept connection, {runs} full updates: mean {statistics.mean(times):.1f} ms, "
    f"median {times[len(times) // 2]:.1f} ms, min {times[0]:.1f} ms, max {times[-1]:.1f} ms"
)
