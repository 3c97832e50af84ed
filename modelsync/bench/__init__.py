"""`modelsync bench`: llama-cpp-python measurements of locked GGUF files, in a child process.

model (values) ─ runner (child process) ─ report (pure: aggregate, compare, table)
                                         └ results (store entries, models.bench.json)
"""
