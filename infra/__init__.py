"""CDK constructs and the demo stack."""
