"""Run the breaker without an AWS account: moto, the synthesized stack, in-process Lambdas."""
