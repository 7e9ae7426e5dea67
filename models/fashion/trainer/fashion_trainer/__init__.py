"""Fashion-MNIST trainer for Vertex AI CustomJobs: `python -m fashion_trainer.task --help`."""
