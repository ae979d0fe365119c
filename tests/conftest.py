"""Shared test settings: CPU only, float32 matmuls/convs at full precision for exact comparisons."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The tests' networks are tiny: on the CPU, XLA's compile time (mostly LLVM's optimisation of the generated code)
# dominates their run time, and skipping LLVM's optimisation passes roughly halves it (a ResNet-50 train step at
# width 4, say) at about the same run time for these shapes. The XLA graph passes are unchanged, so the
# programs compute the same functions. Set in the environment, it also reaches every subprocess a test starts
# (train.main, benchmarks). An explicit --xla_backend_optimization_level in XLA_FLAGS wins; on an accelerator
# (benchmarks/device_check.py runs tests there) the default stays.
if os.environ["JAX_PLATFORMS"] == "cpu" and "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()

import jax  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")
