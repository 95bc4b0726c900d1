"""Live video on the pipeline's frame path: camera / network / stdin sources, network / stdout / virtual-camera
sinks, the real-time hand-off and pacing. ``stylize-video`` (``pipeline/cli.py``) uses them through
``stylize_video.pipeline.live.plan``; the frame path itself (``Runner`` + ``FrameProcessor``) is the file pipeline's.

Modules are imported on demand (nothing here is imported eagerly): ``import stylize_video.pipeline.live.sinks`` etc.
"""
