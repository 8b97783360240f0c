"""Training: MOTIF / GRPO on TRL, and the format cold start (``motif sft``)."""
