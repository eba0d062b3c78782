"""Custom classifiers taught from a few labelled clips: a numpy head on frozen encoder features.

upload.py / archive.py receive the clips, submit.py queues the job, teach.py runs it on a worker
(features.py + head.py), models.py keeps and serves the result.
"""
