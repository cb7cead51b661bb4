"""OpenAI's wire (issue 16; docs/openai.md): the Files API (files.py, its multipart upload in
upload.py) and the Batch API (batches.py) on the same engine and store as Anthropic's batches. An
input file's lines are checked by lines.py, a batch's status and shapes are drawn by objects.py, and
its output and error files are rendered from its results by outputs.py."""
