"""Who is in the frame: person detectors, trackers, temporal smoothing and the pipeline joining them."""
