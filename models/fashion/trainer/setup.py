"""The Fashion-MNIST trainer, installed on Vertex AI's prebuilt TensorFlow training container.

Built with `python setup.py sdist` and installed with `pip install --no-deps`: it may only use
what that container already has (tensorflow, numpy, google-cloud-storage).
"""

from setuptools import find_packages, setup

setup(
    name="fashion-trainer",
    version="0.1.0",
    description="Trains the edge Fashion-MNIST CNN as a Vertex AI CustomJob",
    packages=find_packages(include=["fashion_trainer", "fashion_trainer.*"]),
    python_requires=">=3.9",
    install_requires=[],  # provided by the training container: tensorflow, numpy, google-cloud-storage
)
