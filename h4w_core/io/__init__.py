"""Files and pictures: OBJ meshes and OpenCV overlays of results."""
