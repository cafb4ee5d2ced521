"""Packaging for pyg-ham.

torch is deliberately *not* pinned here: install it first (``make`` does, with
``TORCH_SPEC``, default ``torch==2.13.0``), otherwise pip resolves a multi-GB CUDA build.
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "pyg_ham" / "_version.py").read_text()).group(1)

setup(
    name="pyg-ham",
    version=VERSION,
    description="HAM (Hyperbolic Aware Minimization) for PyTorch Geometric",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["pyg_ham", "pyg_ham.*"]),
    package_data={"pyg_ham": ["py.typed", "data/*.yaml", "data/*.json"]},
    install_requires=[
        "torch>=2.1",
        "torch_geometric>=2.5",
        "ogb>=1.3.6",
        "networkx",
        "numpy",
        "scipy",
        "scikit-learn",
        "click>=8",
        "PyYAML",
        "tqdm",
    ],
    extras_require={
        "test": ["pytest>=7", "pytest-timeout"],
        "plots": ["matplotlib"],
        "llm": ["transformers>=4.46", "peft>=0.10", "accelerate>=0.26", "tokenizers"],
        # pytorch-optimizer's bases (Lion, Prodigy, schedule-free, ...) and SAM; Lightning integration
        "optim": ["pytorch-optimizer>=4.1,<5", "lightning>=2.4,<3"],
    },
    entry_points={
        "console_scripts": ["pyg-ham=pyg_ham.cli:main"],
        # adapters register their datasets, recipes and task kinds with the core
        "pyg_ham.adapters": ["vision = pyg_ham.vision.registration"],
    },
)
