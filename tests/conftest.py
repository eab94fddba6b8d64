"""Test configuration.

Four simulated CPU devices, so that sharding is tested on any machine: XLA reads the
flag when JAX initialises its backends, so it is set here, before any test imports JAX.
On a GPU/TPU machine the real devices are used as well (`jax.devices()`).
"""

import os

_FLAG = "--xla_force_host_platform_device_count=4"
if _FLAG.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()

import pathlib  # noqa: E402

import pytest  # noqa: E402

# Reference data are read in place; NLLAX_DATA overrides the default ../shared/data.
DATA_DIR = pathlib.Path(
    os.environ.get("NLLAX_DATA", pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
).resolve()


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    return DATA_DIR


@pytest.fixture
def x64():
    """Float64 for one test, without flipping the global setting for the others."""
    import jax

    with jax.enable_x64(True):
        yield
