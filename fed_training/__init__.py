"""Multi-modal multi-task federated training on per-user store partitions."""
