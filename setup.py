"""Package mapping: gensc.<part> lives in the top-level folder <part>/.

setuptools cannot list subpackages of a mapped folder from pyproject alone (a wheel silently
omits them), so they are enumerated here with find_packages.
"""

from setuptools import find_packages, setup

# Bottom layer first (docs/architecture.md; the contracts in pyproject.toml).
PARTS = [
    "proto",
    "common",
    "channel",
    "models",
    "sender",
    "receiver",
    "client",
    "evaluation",
    "training",
    "benchmarks",
    "app",
]

package_dir = {f"gensc.{p}": p for p in PARTS}
packages = []
for part in PARTS:
    packages.append(f"gensc.{part}")
    for sub in find_packages(where=part):
        packages.append(f"gensc.{part}.{sub}")
        package_dir[f"gensc.{part}.{sub}"] = f"{part}/{sub.replace('.', '/')}"

setup(packages=packages, package_dir=package_dir)
