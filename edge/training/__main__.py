"""`python -m edge.training --model NAME`: the train stage of pipelines written before edge.training.stage."""

from edge.training.stage import main

main()
