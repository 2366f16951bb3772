import subprocess
import sys

# In a fresh process: what is loaded before the first job is frozen (no longer walked by
# the collector), including the compiler stack torch's first optimizer imports; what the
# job creates afterwards is collected as usual.
_SCRIPT = """
import gc, sys
from harness.parallel import run_jobs
loaded = [object()]
before = any(o is loaded for o in gc.get_objects())
assert list(run_jobs(len, [((1, 2),)])) == [2]
after = [object()]
print(before, any(o is loaded for o in gc.get_objects()), "torch._dynamo" in sys.modules,
      any(o is vars(sys.modules["torch._dynamo"]) for o in gc.get_objects()), any(o is after for o in gc.get_objects()))
"""


def test_a_process_freezes_what_it_loaded_before_its_first_job():
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False", "True", "False", "True"]
