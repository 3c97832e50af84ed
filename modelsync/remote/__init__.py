"""Blob remotes: shared S3-compatible stores a fleet pulls from before the registry and pushes
to (design.md section 8). `plan` is pure; `s3` is the only module that imports boto3."""
