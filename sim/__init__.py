"""cocotb testbenches for the generated core (installed as ``sc_neurocore.sim``).

Entry points: :func:`run_regression` (the whole flow: generate, build, run,
check) and :func:`~sc_neurocore.sim.runner.run_case` (one run on a given
core). The cocotb-side parts (driver, monitor, checker, testbench) are in the
submodules; see ``docs/verification.md``. Importing this package does not
import cocotb.
"""

from .runner import SIMULATORS, Core, available_simulators, build, generate_core, run_case, run_regression

__all__ = ["SIMULATORS", "Core", "available_simulators", "build", "generate_core", "run_case", "run_regression"]
